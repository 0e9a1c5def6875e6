import { outFile, readNumber, str } from '../flags.js';
import { numberFlag } from '../options.js';
import { checkOutputPath } from '../../io/files.js';
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
      .option('top-edges', numberFlag('rows of the top-edges table', 100))
      .option('live', { type: 'boolean', default: false, describe: "embed the model, the circuit's data and the patching engine: edit the circuit in the page and watch its metric (small models)" })
      .option('live-max-mb', numberFlag('with --live: refuse models with more MB of weights than this', 64))
      .option('metric', { type: 'string', default: 'logit-diff', describe: 'with --live: the metric, as circuitry evaluate takes it' })
      .option('batch-size', numberFlag('with --live: prompts per forward pass, as circuitry evaluate takes it', 32))
      .example('circuitry report graphs/mini-gpt2-ioi.json --out reports/ioi.html', 'the report of a circuit')
      .example('circuitry report graphs/mini-gpt2-ioi.json --live', 'the same with live patching in the page'),
  run: async (args) => {
    const circuit = String(args.circuit);
    const topEdges = readNumber(args, 'top-edges', 'count') ?? 100;
    const { writeReport, reportPath } = await import('../../report/files.js');
    const target = outFile(args, false, 'out', 'the HTML file to write') ?? reportPath(circuit);
    checkOutputPath(target, '--out');
    const t0 = performance.now();
    if (args.live) {
      const { writeLiveReport } = await import('../../report/live.js');
      const opts = { title: str(args, 'title'), topEdges, maxMb: readNumber(args, 'live-max-mb', 'positive')!, metric: str(args, 'metric')!, batchSize: readNumber(args, 'batch-size', 'count')!, backend: str(args, 'backend'), log: (m: string) => console.error(m) };
      const { out, bytes } = await writeLiveReport(circuit, target, opts);
      console.log(`wrote ${out} (${(bytes / 1e6).toFixed(2)} MB, live, ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      return 0;
    }
    const { out, bytes } = writeReport(circuit, target, { title: str(args, 'title'), topEdges });
    console.log(`wrote ${out} (${(bytes / 1e6).toFixed(2)} MB, ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    return 0;
  },
};
