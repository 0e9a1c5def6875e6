import { CircuitryError } from '../../errors.js';
import type { Command } from './types.js';

/** `circuitry compare A.json B.json [...] --out FILE.html`: shared and unique parts, IoU, drawings. */
export const compareCommand: Command = {
  command: 'compare <circuits..>',
  describe: 'compare two or more circuits in one HTML page (shared/unique nodes and edges, IoU, drawings)',
  builder: (y) =>
    y
      .positional('circuits', { type: 'string', array: true, describe: 'circuit JSON files (two or more)', demandOption: true })
      .option('out', { type: 'string', describe: 'output HTML file (default: reports/compare-<names>.html)' }),
  run: async (args) => {
    const circuits = (args.circuits as unknown[]).map(String);
    if (circuits.length < 2) throw new CircuitryError(`compare: expected at least two circuit files, got ${circuits.length}`);
    const { writeComparison } = await import('../../report/files.js');
    const { out, bytes } = writeComparison(circuits, args.out as string | undefined);
    console.log(`wrote ${out} (${(bytes / 1e6).toFixed(2)} MB, ${circuits.length} circuits)`);
    return 0;
  },
};
