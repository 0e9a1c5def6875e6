import { outFile, readNumber, str } from '../flags.js';
import { numberFlag } from '../options.js';
import { checkOutputPath } from '../../io/files.js';
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
      .option('top-edges', numberFlag('rows of the top-edges table', 100))
      .example('circuitry report graphs/mini-gpt2-ioi.json --out reports/ioi.html', 'the report of a circuit'),
  run: async (args) => {
    const circuit = String(args.circuit);
    const topEdges = readNumber(args, 'top-edges', 'count') ?? 100;
    const { writeReport, reportPath } = await import('../../report/files.js');
    const target = outFile(args, false, 'out', 'the HTML file to write') ?? reportPath(circuit);
    checkOutputPath(target, '--out');
    const t0 = performance.now();
    const { out, bytes } = writeReport(circuit, target, { title: str(args, 'title'), topEdges });
    console.log(`wrote ${out} (${(bytes / 1e6).toFixed(2)} MB, ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    return 0;
  },
};
