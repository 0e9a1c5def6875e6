import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { resolveDataset } from '../src/discovery/data.js';
import { circuitMetrics, maskOf } from '../src/discovery/evaluate.js';
import { readCircuitFile } from '../src/graph/circuit-json.js';
import { CircuitGraph } from '../src/graph/graph.js';
import { circuitToJson, createCircuit } from '../src/graph/index.js';
import { loadModel, type LoadedModel } from '../src/model/load.js';
import { Patcher } from '../src/patching/patcher.js';
import { buildLivePayload, writeLiveComparison } from '../src/report/live.js';
import { renderLiveReport } from '../src/report/render.js';
import { chromiumAvailable, CHROMIUM_PATH, launchChromium, openPage, settle, type Browser, type PageLog } from './helpers/report-browser.js';

/**
 * `circuitry report --live` in headless chromium: the page re-runs the CLI's own engine on the
 * embedded mini-gpt2 and must give `circuitry evaluate`'s numbers, for the discovered circuit,
 * the full graph, the empty one, and whatever the UI makes of them (a toggled edge, a node
 * switched off by a click, the threshold slider).
 */

const HAVE = chromiumAvailable();
const RUN = HAVE || Boolean(process.env.CI);
if (!RUN) console.warn(`[report-live.browser] SKIPPED: no chromium at ${CHROMIUM_PATH}. With CI set, this is a failure instead.`);

const CLI = join(process.cwd(), 'bin', 'circuitry.js');
const TASK = { name: 'ioi', n: 16, seed: 1 };
const TOL = 1e-4;

/** A mini-gpt2 circuit file as discovery writes it: scores, in-graph edges, model and data in meta. */
function circuitFile(graph: CircuitGraph): ReturnType<typeof circuitToJson> {
  const scores = graph.denseEdgeArray(0);
  const inGraph = graph.denseEdgeArray(0);
  graph.edges.forEach((e, i) => {
    const s = Math.sin(1.7 * i + 0.3);
    scores[e.index] = s;
    if (Math.abs(s) > 0.75) inGraph[e.index] = 1;
  });
  return circuitToJson(createCircuit(graph, { scores, inGraph, dModel: 64 }), { model: { name: 'mini-gpt2', hash: 'test' }, task: 'ioi', method: 'eap', config: { task: TASK } });
}

interface Shown {
  metric: number;
  normalized: number;
  edges: string[];
}

/** Waits until the page has shown the result for the circuit it draws now, and returns it. */
async function shown(page: Page): Promise<Shown> {
  // polled from here: the page's CSP (no unsafe-eval) stops waitForFunction's in-page polling
  const settled = `(() => { const l = window.circuitryLive; const s = l && l.shown(); return Boolean(l && l.ready && s && document.getElementById('panel-live').dataset.busy === '0' && s.edges.join() === l.current().join()); })()`;
  const deadline = Date.now() + 60_000;
  while (!((await page.evaluate(settled)) as boolean)) {
    if (Date.now() > deadline) throw new Error('the live page did not show a result within 60 s');
    await page.waitForTimeout(50);
  }
  const s = (await page.evaluate(`(() => { const s = window.circuitryLive.shown(); return { metric: s.metric, normalized: s.normalized, edges: s.edges }; })()`)) as Shown;
  // what the panel displays is that result
  expect(Number(await page.getAttribute('#live-metric', 'data-value'))).toBe(s.metric);
  expect(Number(await page.getAttribute('#live-normalized', 'data-value'))).toBe(s.normalized);
  return s;
}

async function evaluateInPage(page: Page, edges: readonly string[]): Promise<{ metric: number; normalized: number }> {
  return (await page.evaluate(`window.circuitryLive.evaluate(${JSON.stringify(edges)}).then((r) => ({ metric: r.metric, normalized: r.normalized }))`)) as { metric: number; normalized: number };
}

describe.skipIf(!RUN)('live report in headless chromium', () => {
  let browser: Browser;
  let dir: string;
  let circuitPath: string;
  let discovered: string[];
  let loaded: LoadedModel;
  let patcher: Patcher;
  let graph: CircuitGraph;
  /** The library function `circuitry evaluate` calls, on the circuit of exactly these edges. */
  const reference = (edges: Iterable<string>) => circuitMetrics(patcher, maskOf(patcher, edges));

  beforeAll(async () => {
    if (!HAVE) throw new Error(`CI is set but chromium is missing at ${CHROMIUM_PATH}`);
    dir = mkdtempSync(join(tmpdir(), 'circuitry-live-'));
    graph = new CircuitGraph({ nLayers: 3, nHeads: 4, hasMlp: true, qkv: true });
    const file = circuitFile(graph);
    discovered = Object.entries(file.edges).filter(([, e]) => e.in_graph).map(([n]) => n);
    circuitPath = join(dir, 'ioi.json');
    writeFileSync(circuitPath, JSON.stringify(file));
    await initBackend('wasm');
    loaded = await loadModel('mini-gpt2');
    const data = resolveDataset(loaded, { task: { ...TASK, options: {} } });
    patcher = new Patcher(loaded.model, readCircuitFile(circuitPath).circuit.graph, data, { metric: 'logit-diff', batchSize: 32 });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    patcher?.dispose();
    loaded?.model.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Opens a page with every request routed: anything but file:, data: and blob: fails the test. */
  async function open(path: string): Promise<{ page: Page; log: PageLog; requests: string[] }> {
    const { page, log } = await openPage(browser);
    const requests: string[] = [];
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (!/^(file|data|blob):/.test(url)) {
        requests.push(url);
        return route.abort();
      }
      return route.continue();
    });
    page.on('request', (r) => {
      if (!/^(file|data|blob):/.test(r.url())) requests.push(r.url());
    });
    await page.goto(`file://${path}`);
    return { page, log, requests };
  }

  it("the page's numbers are circuitry evaluate's: discovered, full and empty circuits, an edge toggled, a node clicked off, the slider, reset", async () => {
    const out = join(dir, 'ioi.html');
    const made = spawnSync('node', [CLI, 'report', circuitPath, '--live', '--out', out], { encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);
    expect(made.stdout).toContain('live');
    const cli = spawnSync('node', [CLI, 'evaluate', circuitPath, '--json'], { encoding: 'utf8' });
    expect(cli.status, cli.stderr).toBe(0);
    const evaluated = JSON.parse(cli.stdout) as { full: number; empty: number; circuit: number; normalized: number };

    const { page, log, requests } = await open(out);
    const first = await shown(page);
    expect(first.edges.sort()).toEqual([...discovered].sort());
    expect(first.metric).toBeCloseTo(evaluated.circuit, 4);
    expect(Math.abs(first.metric - evaluated.circuit)).toBeLessThan(TOL);
    expect(Math.abs(first.normalized - evaluated.normalized)).toBeLessThan(TOL);
    expect(Math.abs(Number(await page.getAttribute('#live-full', 'data-value')) - evaluated.full)).toBeLessThan(TOL);
    expect(Math.abs(Number(await page.getAttribute('#live-empty', 'data-value')) - evaluated.empty)).toBeLessThan(TOL);
    const backend = (await page.evaluate('window.circuitryLive.backend')) as string;
    expect(backend).toMatch(/^wasm/);
    expect(await page.textContent('#live-status')).toContain(backend);
    expect(Number(await page.getAttribute('#live-time', 'data-value'))).toBeGreaterThan(0);

    // the API on the full graph and on the empty one
    const all = graph.edges.map((e) => e.name);
    const fullRef = reference(all);
    const full = await evaluateInPage(page, all);
    expect(Math.abs(full.metric - fullRef.circuit)).toBeLessThan(TOL);
    expect(Math.abs(full.metric - evaluated.full)).toBeLessThan(TOL);
    expect(Math.abs(full.normalized - 1)).toBeLessThan(TOL);
    const empty = await evaluateInPage(page, []);
    expect(Math.abs(empty.metric - evaluated.empty)).toBeLessThan(TOL);
    expect(Math.abs(empty.normalized)).toBeLessThan(TOL);
    await expect(page.evaluate(`window.circuitryLive.evaluate(['a0.h0->nowhere']).then(() => 'resolved', (e) => e.message)`)).resolves.toContain('a0.h0->nowhere');

    // an edge toggled off through the UI: the shown metric is evaluate's for the remaining edges
    const dropped = discovered[0];
    await page.fill('#live-edge', dropped);
    await page.click('#live-toggle');
    const afterToggle = await shown(page);
    expect(afterToggle.edges).not.toContain(dropped);
    expect(afterToggle.edges.length).toBe(discovered.length - 1);
    const toggledRef = reference(afterToggle.edges);
    expect(Math.abs(afterToggle.metric - toggledRef.circuit)).toBeLessThan(TOL);
    expect(Math.abs(afterToggle.normalized - toggledRef.normalized)).toBeLessThan(TOL);
    expect(Math.abs(afterToggle.metric - first.metric)).toBeGreaterThan(1e-6);
    expect(await page.textContent('#live-changes')).toContain(dropped);

    // a node clicked in the drawing: switched off with all its edges
    const node = 'a0.h0';
    const box = (await page.locator('#graph').boundingBox())!;
    const pos = (await page.evaluate(`window.__circuitry.nodePosition(${JSON.stringify(node)})`)) as { x: number; y: number };
    await page.mouse.click(box.x + pos.x, box.y + pos.y);
    await settle(page);
    const afterClick = await shown(page);
    const touches = (e: string) => e.startsWith(`${node}->`) || e.split('->')[1].replace(/<.>$/, '') === node;
    expect(afterClick.edges.some(touches)).toBe(false);
    expect(afterClick.edges).toEqual(afterToggle.edges.filter((e) => !touches(e)));
    expect(afterClick.edges.length).toBeLessThan(afterToggle.edges.length);
    expect(Math.abs(afterClick.metric - reference(afterClick.edges).circuit)).toBeLessThan(TOL);

    // reset, then the threshold slider (one stop up drops the weakest edge)
    await page.click('#live-reset');
    const reset = await shown(page);
    expect(reset.edges.sort()).toEqual([...discovered].sort());
    expect(Math.abs(reset.metric - evaluated.circuit)).toBeLessThan(TOL);
    await page.focus('#threshold');
    await page.keyboard.press('ArrowRight');
    const slid = await shown(page);
    expect(slid.edges.length).toBe(discovered.length - 1);
    expect(Math.abs(slid.metric - reference(slid.edges).circuit)).toBeLessThan(TOL);

    // a prompt picked: its logit difference in the full model, the circuit and the empty circuit
    await page.selectOption('#live-prompt', '3');
    const perPrompt = (await page.evaluate(`window.circuitryLive.shown().perPrompt.logitDiff[3]`)) as number;
    expect(Number(await page.getAttribute('#live-prompt-circuit', 'data-value'))).toBe(perPrompt);
    expect(Number(await page.getAttribute('#live-prompt-full', 'data-value'))).not.toBe(perPrompt);
    expect(await page.locator('#live-per-prompt tbody tr').count()).toBe(TASK.n);

    expect(requests).toEqual([]);
    expect(log.errors).toEqual([]);
    await page.close();
  });

  it('prompt text with HTML and script payloads stays inert', async () => {
    const { file, circuit } = readCircuitFile(circuitPath);
    const live = await buildLivePayload([{ name: 'ioi', file, circuit, source: circuitPath }]);
    const payloads = ['<img src=x onerror="window.__pwned=1">', '</script><script>window.__pwned=2</script>', '<svg onload="window.__pwned=3">', '"><iframe src="javascript:window.__pwned=4">'];
    live.data.datasets[0].text.forEach((t, i) => {
      t.clean = `${payloads[i % payloads.length]} ${t.clean}`;
      t.answer = payloads[(i + 1) % payloads.length];
    });
    live.data.datasets[0].name = '<b onmouseover=alert(1)>ioi</b>';
    const out = join(dir, 'xss.html');
    writeFileSync(out, renderLiveReport(file, live));
    const { page, log, requests } = await open(out);
    await shown(page);
    await page.selectOption('#live-prompt', '1');
    await page.hover('#live-per-prompt tbody tr:nth-child(1)');
    expect(await page.evaluate('window.__pwned')).toBeUndefined();
    expect(await page.locator('img, iframe, #panel-live svg, b').count()).toBe(0);
    expect(await page.textContent('#live-prompt-text')).toContain('</script><script>window.__pwned=2</script>');
    expect(await page.textContent('#live-per-prompt')).toContain('<img src=x onerror="window.__pwned=1">');
    expect(log.dialogs).toEqual([]);
    expect(log.errors).toEqual([]);
    expect(requests).toEqual([]);
    await page.close();
  });

  it('the live comparison: each circuit alone, the union and the intersection, on each task\'s data, as evaluate computes them', async () => {
    // a second circuit of the same model on another task
    const other = circuitFile(graph);
    const names = graph.edges.map((e) => e.name);
    names.forEach((n, i) => (other.edges[n].in_graph = Math.cos(0.9 * i) > 0.5));
    other.meta = { ...other.meta, task: 'greater-than', config: { task: { name: 'greater-than', n: 8, seed: 2 } } };
    const otherPath = join(dir, 'gt.json');
    writeFileSync(otherPath, JSON.stringify(other));
    const out = join(dir, 'compare.html');
    await writeLiveComparison([circuitPath, otherPath], out);
    const { page, log, requests } = await open(out);
    const deadline = Date.now() + 90_000;
    while (!((await page.evaluate('Boolean(window.circuitryLive && window.circuitryLive.ready)')) as boolean)) {
      if (Date.now() > deadline) throw new Error(`the live comparison did not finish: ${String(await page.evaluate('window.circuitryLive && window.circuitryLive.error'))}`);
      await page.waitForTimeout(100);
    }
    const sets = (await page.evaluate('window.circuitryLive.sets()')) as { name: string; edges: string[] }[];
    const a = new Set(discovered);
    const b = new Set(names.filter((n) => other.edges[n].in_graph));
    expect(sets.map((x) => x.name)).toEqual(['ioi', 'gt', 'union (ioi ∪ gt)', 'intersection (ioi ∩ gt)']);
    expect(new Set(sets[2].edges)).toEqual(new Set([...a, ...b]));
    expect(new Set(sets[3].edges)).toEqual(new Set([...a].filter((e) => b.has(e))));
    // the ioi data: the rows against the library; the greater-than data: against its own patcher
    const gtData = resolveDataset(loaded, { task: { name: 'greater-than', n: 8, seed: 2, options: {} } });
    const gtPatcher = new Patcher(loaded.model, graph, gtData, { metric: 'logit-diff', batchSize: 32 });
    try {
      for (const [r, set] of sets.entries()) {
        for (const [ds, p] of [patcher, gtPatcher].entries()) {
          const ref = circuitMetrics(p, maskOf(p, set.edges));
          expect(Math.abs(Number(await page.getAttribute(`#live-cell-${r}-${ds}`, 'data-value')) - ref.circuit)).toBeLessThan(TOL);
          expect(Math.abs(Number(await page.getAttribute(`#live-norm-${r}-${ds}`, 'data-value')) - ref.normalized)).toBeLessThan(TOL);
        }
      }
    } finally {
      gtPatcher.dispose();
    }
    expect(requests).toEqual([]);
    expect(log.errors).toEqual([]);
    await page.close();
  });

  it('refuses a model above the size limit before any work, naming its size and the limit', () => {
    const out = join(dir, 'refused.html');
    const r = spawnSync('node', [CLI, 'report', circuitPath, '--live', '--live-max-mb', '0.5', '--out', out], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("model 'mini-gpt2' has 0.69 MB of weights");
    expect(r.stderr).toContain('limit of 0.5 MB');
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/); // a message, not a stack trace
    expect(existsSync(out)).toBe(false);
  });
});
