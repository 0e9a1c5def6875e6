import { CircuitryError } from '../../errors.js';
import type { Command } from './types.js';

/** `circuitry compare A.json B.json [...] --out FILE.html`: shared and unique parts, IoU, drawings. */
export const compareCommand: Command = {
  command: 'compare <circuits..>',
  describe: 'compare two or more circuits in one HTML page (shared/unique nodes and edges, IoU, drawings)',
  builder: (y) =>
    y
      .positional('circuits', { type: 'string', array: true, describe: 'circuit JSON files (two or more)', demandOption: true })
      .option('out', { type: 'string', describe: 'output HTML file (default: reports/compare-<names>.html)' })
      .option('live', { type: 'boolean', default: false, describe: 'embed the model and the data (circuits of one small model): the union, the intersection and each circuit alone, evaluated in the page' })
      .option('live-max-mb', { type: 'number', default: 64, describe: 'with --live: refuse models with more MB of weights than this' })
      .option('metric', { type: 'string', default: 'logit-diff', describe: 'with --live: the metric, as circuitry evaluate takes it' })
      .option('batch-size', { type: 'number', default: 32, describe: 'with --live: prompts per forward pass' }),
  run: async (args) => {
    const circuits = (args.circuits as unknown[]).map(String);
    if (circuits.length < 2) throw new CircuitryError(`compare: expected at least two circuit files, got ${circuits.length}`);
    if (args.live) {
      const { writeLiveComparison } = await import('../../report/live.js');
      const opts = { maxMb: args['live-max-mb'] as number, metric: args.metric as string, batchSize: args['batch-size'] as number, backend: args.backend as string | undefined, log: (m: string) => console.error(m) };
      const { out, bytes } = await writeLiveComparison(circuits, args.out as string | undefined, opts);
      console.log(`wrote ${out} (${(bytes / 1e6).toFixed(2)} MB, ${circuits.length} circuits, live)`);
      return 0;
    }
    const { writeComparison } = await import('../../report/files.js');
    const { out, bytes } = writeComparison(circuits, args.out as string | undefined);
    console.log(`wrote ${out} (${(bytes / 1e6).toFixed(2)} MB, ${circuits.length} circuits)`);
    return 0;
  },
};
