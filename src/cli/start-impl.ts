import { initBackend } from '../backend/index.js';
import { loadModel, type LoadedModel } from '../model/load.js';
import { readPipelineConfig } from '../discovery/config.js';
import { runPipelineFile } from './discover-impl.js';
import { checkPipelineOutputs } from './flags.js';
import { checkOutputPath } from '../io/files.js';

export async function startCli(args: { pipelines: string[]; compareOut: string; backend?: string }): Promise<number> {
  const t0 = performance.now();
  // every file is read and every output checked before the first model loads
  const configs = args.pipelines.map((p) => readPipelineConfig(p));
  for (const cfg of configs) checkPipelineOutputs(cfg, true);
  if (configs.length > 1) checkOutputPath(args.compareOut, '--compare-out');
  const backend = await initBackend(args.backend);
  console.log(`circuitry quickstart · backend ${backend}`);
  const models = new Map<string, LoadedModel>();
  const written: string[] = [];
  try {
    for (const cfg of configs) {
      let loaded = models.get(cfg.model);
      if (!loaded) {
        loaded = await loadModel(cfg.model, { log: (m) => console.error(m) });
        models.set(cfg.model, loaded);
      }
      const out = await runPipelineFile(cfg, { resume: false, report: true, loaded });
      if (!out) return 130;
      written.push(out);
    }
  } finally {
    models.forEach((m) => m.model.dispose());
  }
  if (written.length > 1) {
    const { writeComparison } = await import('../report/files.js');
    writeComparison(written, args.compareOut);
    console.log(`wrote ${args.compareOut}`);
  }
  console.log(`done in ${((performance.now() - t0) / 1000).toFixed(0)} s: circuits in graphs/, reports in reports/ (open them in a browser)`);
  return 0;
}
