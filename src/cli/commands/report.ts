import { CircuitryError } from '../../errors.js';
import type { Command } from './types.js';

/** `circuitry report CIRCUIT.json [--out FILE.html] [--live]`: the interactive HTML report of a circuit (with live patching). */
export const reportCommand: Command = {
  command: 'report <circuit>',
  describe: 'write an interactive, self-contained HTML report of a circuit JSON file',
  builder: (y) =>
    y
      .positional('circuit', { type: 'string', describe: 'circuit JSON file (circuitry / EAP-IG / MIB format)', demandOption: true })
      .option('out', { type: 'string', describe: 'output HTML file (default: reports/<basename>.html)' })
      .option('title', { type: 'string', describe: 'page heading (default: task · model)' })
      .option('top-edges', { type: 'number', default: 100, describe: 'rows of the top-edges table' })
      .option('live', { type: 'boolean', default: false, describe: "embed the model, the circuit's data and the patching engine: edit the circuit in the page and watch its metric (small models)" })
      .option('live-max-mb', { type: 'number', default: 64, describe: 'with --live: refuse models with more MB of weights than this' })
      .option('metric', { type: 'string', default: 'logit-diff', describe: 'with --live: the metric, as circuitry evaluate takes it' })
      .option('batch-size', { type: 'number', default: 32, describe: 'with --live: prompts per forward pass, as circuitry evaluate takes it' }),
  run: async (args) => {
    const circuit = String(args.circuit);
    const topEdges = args['top-edges'] as number;
    if (!(Number.isInteger(topEdges) && topEdges > 0)) throw new CircuitryError(`--top-edges: expected a positive integer, got ${String(args['top-edges'])}`);
    const t0 = performance.now();
    if (args.live) {
      const { writeLiveReport } = await import('../../report/live.js');
      const opts = { title: args.title as string | undefined, topEdges, maxMb: args['live-max-mb'] as number, metric: args.metric as string, batchSize: args['batch-size'] as number, backend: args.backend as string | undefined, log: (m: string) => console.error(m) };
      const { out, bytes } = await writeLiveReport(circuit, args.out as string | undefined, opts);
      console.log(`wrote ${out} (${(bytes / 1e6).toFixed(2)} MB, live, ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      return 0;
    }
    const { writeReport } = await import('../../report/files.js');
    const { out, bytes } = writeReport(circuit, args.out as string | undefined, { title: args.title as string | undefined, topEdges });
    console.log(`wrote ${out} (${(bytes / 1e6).toFixed(2)} MB, ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    return 0;
  },
};
