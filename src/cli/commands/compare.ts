import { CircuitryError } from '../../errors.js';
import { outFile, readNumber, str } from '../flags.js';
import { numberFlag } from '../options.js';
import { checkOutputPath } from '../../io/files.js';
import type { Command } from './types.js';

/** `circuitry compare A.json B.json [...] --out FILE.html`: shared and unique parts, IoU, drawings. */
export const compareCommand: Command = {
  command: 'compare <circuits..>',
  describe: 'compare two or more circuits in one HTML page (shared/unique nodes and edges, IoU, drawings)',
  builder: (y) =>
    y
      // main.ts makes a repeated flag take its last value; a variadic positional needs every value
      .parserConfiguration({ 'duplicate-arguments-array': true })
      .positional('circuits', { type: 'string', array: true, describe: 'circuit JSON files (two or more)', demandOption: true })
      .option('out', { type: 'string', requiresArg: true, describe: 'output HTML file (default: reports/compare-<names>.html)' })
      .option('live', { type: 'boolean', default: false, describe: 'embed the model and the data (circuits of one small model): the union, the intersection and each circuit alone, evaluated in the page' })
      .option('live-max-mb', numberFlag('with --live: refuse models with more MB of weights than this', 64))
      .option('metric', { type: 'string', default: 'logit-diff', describe: 'with --live: the metric, as circuitry evaluate takes it' })
      .option('batch-size', numberFlag('with --live: prompts per forward pass, as circuitry evaluate takes it', 32))
      .example('circuitry compare graphs/mini-gpt2-ioi.json graphs/mini-gpt2-induction.json --out reports/ab.html', 'two circuits side by side'),
  run: async (args) => {
    const circuits = (args.circuits as unknown[]).map(String);
    if (circuits.length < 2) throw new CircuitryError(`compare: expected at least two circuit files, got ${circuits.length}`);
    const { writeComparison, comparisonPath } = await import('../../report/files.js');
    const target = outFile(args, false, 'out', 'the HTML file to write') ?? comparisonPath(circuits);
    checkOutputPath(target, '--out');
    if (args.live) {
      const { writeLiveComparison } = await import('../../report/live.js');
      const opts = { maxMb: readNumber(args, 'live-max-mb', 'positive')!, metric: str(args, 'metric')!, batchSize: readNumber(args, 'batch-size', 'count')!, backend: str(args, 'backend'), log: (m: string) => console.error(m) };
      const { out, bytes } = await writeLiveComparison(circuits, target, opts);
      console.log(`wrote ${out} (${(bytes / 1e6).toFixed(2)} MB, ${circuits.length} circuits, live)`);
      return 0;
    }
    const { out, bytes } = writeComparison(circuits, target);
    console.log(`wrote ${out} (${(bytes / 1e6).toFixed(2)} MB, ${circuits.length} circuits)`);
    return 0;
  },
};
