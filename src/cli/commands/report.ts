import { CircuitryError } from '../../errors.js';
import type { Command } from './types.js';

/** `circuitry report CIRCUIT.json [--out FILE.html]`: the interactive HTML report of a circuit. */
export const reportCommand: Command = {
  command: 'report <circuit>',
  describe: 'write an interactive, self-contained HTML report of a circuit JSON file',
  builder: (y) =>
    y
      .positional('circuit', { type: 'string', describe: 'circuit JSON file (circuitry / EAP-IG / MIB format)', demandOption: true })
      .option('out', { type: 'string', describe: 'output HTML file (default: reports/<basename>.html)' })
      .option('title', { type: 'string', describe: 'page heading (default: task · model)' })
      .option('top-edges', { type: 'number', default: 100, describe: 'rows of the top-edges table' }),
  run: async (args) => {
    const circuit = String(args.circuit);
    const topEdges = args['top-edges'] as number;
    if (!(Number.isInteger(topEdges) && topEdges > 0)) throw new CircuitryError(`--top-edges: expected a positive integer, got ${String(args['top-edges'])}`);
    const { writeReport } = await import('../../report/files.js');
    const t0 = performance.now();
    const { out, bytes } = writeReport(circuit, args.out as string | undefined, { title: args.title as string | undefined, topEdges });
    console.log(`wrote ${out} (${(bytes / 1e6).toFixed(2)} MB, ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    return 0;
  },
};
