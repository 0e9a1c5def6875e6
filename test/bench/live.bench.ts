import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveDataset } from '../../src/discovery/data.js';
import { LiveEvaluator } from '../../src/discovery/live.js';
import { CircuitGraph } from '../../src/graph/graph.js';
import { circuitToJson, createCircuit } from '../../src/graph/index.js';
import { loadModel } from '../../src/model/load.js';
import { writeLiveReport } from '../../src/report/live.js';
import { chromiumAvailable, launchChromium, openPage } from '../helpers/report-browser.js';
import { fmt, timeMs } from './timing.js';

/**
 * The live report's recompute time (issue 20 aims at ≤ 1 s on mini-gpt2 with 64 prompts): one
 * `circuitryLive.evaluate` in headless chromium on a circuit of about a third of mini-gpt2's
 * edges, with one edge toggled each time, next to the same LiveEvaluator call in Node.
 * CIRCUITRY_BENCH_LIVE_N sets the prompts (default 64).
 */
export async function benchLive(log: (line: string) => void): Promise<void> {
  const n = Number(process.env.CIRCUITRY_BENCH_LIVE_N ?? 64);
  const task = { name: 'ioi', n, seed: 1 };
  const graph = new CircuitGraph({ nLayers: 3, nHeads: 4, hasMlp: true, qkv: true });
  const inGraph = graph.denseEdgeArray(0);
  graph.edges.forEach((e, i) => (inGraph[e.index] = i % 3 === 0 ? 1 : 0));
  const edges = graph.edges.filter((_, i) => i % 3 === 0).map((e) => e.name);
  const variants = edges.map((_, i) => edges.filter((__, j) => j !== i));

  const loaded = await loadModel('mini-gpt2');
  const live = new LiveEvaluator(loaded.model, graph, resolveDataset(loaded, { task: { ...task, options: {} } }));
  let k = 0;
  const node = await timeMs(() => live.evaluate(variants[k++ % variants.length]), 5, 1);
  live.dispose();
  loaded.model.dispose();
  log(`Node, LiveEvaluator.evaluate (mini-gpt2, ${n} prompts, ${edges.length - 1} edges): ${fmt(node, 0)} ms`);

  if (!chromiumAvailable()) {
    log('chromium not found: the in-page measurement is skipped');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'circuitry-bench-live-'));
  const browser = await launchChromium();
  try {
    const path = join(dir, 'c.json');
    writeFileSync(path, JSON.stringify(circuitToJson(createCircuit(graph, { inGraph, dModel: 64 }), { model: { name: 'mini-gpt2', hash: 'bench' }, config: { task } })));
    const html = join(dir, 'c.html');
    const t0 = performance.now();
    await writeLiveReport(path, html);
    log(`writing the live report: ${fmt((performance.now() - t0) / 1000, 1)} s`);
    const { page } = await openPage(browser);
    const t1 = performance.now();
    await page.goto(`file://${html}`);
    while (!((await page.evaluate('Boolean(window.circuitryLive && (window.circuitryLive.ready || window.circuitryLive.error))')) as boolean)) await page.waitForTimeout(50);
    log(`page load to ready (model, caches, first circuit): ${fmt((performance.now() - t1) / 1000, 1)} s, backend ${String(await page.evaluate('window.circuitryLive.backend'))}`);
    const times = (await page.evaluate(`(async () => {
      const variants = ${JSON.stringify(variants.slice(0, 8))};
      const out = [];
      for (const v of variants) out.push((await window.circuitryLive.evaluate(v)).ms);
      return out;
    })()`)) as number[];
    const sorted = [...times.slice(1)].sort((a, b) => a - b);
    log(`in the page, one recompute (median of ${sorted.length} after one warm-up): ${fmt(sorted[Math.floor(sorted.length / 2)], 0)} ms (bar: ≤ 1000 ms at 64 prompts)`);
  } finally {
    await browser.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
