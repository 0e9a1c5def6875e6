import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CircuitFile } from '../src/graph/circuit-types.js';
import { ThresholdModel, type Mode, type ThresholdState } from '../src/report/client/threshold.js';
import { buildReportData } from '../src/report/data.js';
import { renderComparison, renderReport } from '../src/report/render.js';
import { TAU_KEPT } from '../src/report/types.js';
import { chromiumAvailable, CHROMIUM_PATH, countColouredPixels, launchChromium, loadReport, openPage, settle, type Browser } from './helpers/report-browser.js';
import { plantedCircuit, randomCircuit, XSS_STRINGS, xssCircuit } from './helpers/report-fixtures.js';

/**
 * The reports in a real browser: Debian's chromium, headless, driven by playwright-core, pages
 * opened from file:// URLs. Without chromium the suite is skipped (with a printed reason)
 * unless CI is set, where a missing browser is a failure.
 */

const HAVE = chromiumAvailable();
const RUN = HAVE || Boolean(process.env.CI);
if (!RUN) {
  console.warn(`[report.browser] SKIPPED: no chromium at ${CHROMIUM_PATH} (apt-get install -y chromium, or set CHROMIUM_PATH). With CI set, this is a failure instead.`);
}

interface Api {
  ready: boolean;
  state(): ThresholdState;
  edgeCount(): number;
  renderedEdgeCount(): number;
  nodePosition(name: string): { x: number; y: number } | null;
  layout(): string;
  selection(): { kind: string; index: number } | null;
  edgeCounts(): number[];
}

async function api<T>(page: Page, fn: (a: Api) => T): Promise<T> {
  return page.evaluate(`(${fn.toString()})(window.__circuitry)`) as Promise<T>;
}

async function edgeCountAttr(page: Page): Promise<number> {
  return Number(await page.getAttribute('#edge-count', 'data-edge-count'));
}

/** Moves the slider with the keyboard, as a user would, and waits for the redraw. */
async function pressSlider(page: Page, key: string): Promise<void> {
  await page.focus('#threshold');
  await page.keyboard.press(key);
  await settle(page);
}

describe.skipIf(!RUN)('reports in headless chromium', () => {
  let browser: Browser;
  let dir: string;
  const files: Record<string, { path: string; file: CircuitFile }> = {};

  beforeAll(async () => {
    if (!HAVE) throw new Error(`CI is set but chromium is missing at ${CHROMIUM_PATH}: install Debian's chromium (apt-get install -y chromium)`);
    dir = mkdtempSync(join(tmpdir(), 'circuitry-browser-'));
    const write = (name: string, file: CircuitFile): void => {
      const path = join(dir, `${name}.html`);
      writeFileSync(path, renderReport(file));
      files[name] = { path, file };
    };
    write('planted', plantedCircuit());
    write('xss', xssCircuit());
    write('big', randomCircuit(12, 12, 20240501, 400));
    const cmp = join(dir, 'compare.html');
    writeFileSync(
      cmp,
      renderComparison([
        { name: 'ioi', file: files.planted.file },
        { name: 'ioi-eap', file: plantedCircuit({ variant: 'eap' }) },
        { name: 'greater-than', file: plantedCircuit({ task: 'greater-than', seed: 11 }) },
      ]),
    );
    files.compare = { path: cmp, file: files.planted.file };
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('opens from a file:// URL with no console errors and draws the graph', async () => {
    const { page, log } = await openPage(browser);
    const ms = await loadReport(page, files.planted.path);
    console.log(`[report.browser] planted GPT-2-small report (${Object.keys(files.planted.file.edges).length} edges) ready in ${ms.toFixed(0)} ms`);
    await settle(page, 6);
    expect(page.url().startsWith('file://')).toBe(true);
    expect(await page.title()).toBe('ioi · gpt2 — circuitry');
    const inGraph = Object.values(files.planted.file.edges).filter((e) => e.in_graph).length;
    expect(await edgeCountAttr(page)).toBe(inGraph);
    expect(await api(page, (a) => a.renderedEdgeCount())).toBe(inGraph);
    const canvases = await page.locator('#graph canvas').count();
    expect(canvases).toBeGreaterThanOrEqual(2);
    const coloured = await countColouredPixels(browser, await page.locator('#graph').screenshot());
    expect(coloured).toBeGreaterThan(2000);
    // every panel was filled
    for (const sel of ['#metrics .metric', '#summary dl', '#faithfulness svg path', '#sweeps svg rect', '#top-edges tbody tr', '#examples .example']) {
      expect(await page.locator(sel).count(), sel).toBeGreaterThan(0);
    }
    expect(log.errors).toEqual([]);
    await page.close();
  });

  it('moving the threshold re-filters the drawing in the right direction', async () => {
    const { page, log } = await openPage(browser);
    await loadReport(page, files.planted.path);
    await settle(page);
    const model = new ThresholdModel(buildReportData(files.planted.file));
    const expected = (s: ThresholdState): number => model.mask(s.mode as Mode, s.threshold, s.scopeAll).reduce((a, b) => a + b, 0);
    const check = async (): Promise<number> => {
      const s = await api(page, (a) => a.state());
      const n = await edgeCountAttr(page);
      expect(n).toBe(expected(s));
      expect(await api(page, (a) => a.renderedEdgeCount())).toBe(n);
      return n;
    };
    const png = async (): Promise<number> => countColouredPixels(browser, await page.locator('#graph').screenshot());

    // |score|: raising the threshold drops edges, step by step; lowering it brings them back
    const start = await check();
    const pixelsStart = await png();
    let previous = start;
    for (let i = 0; i < 12; i++) {
      await pressSlider(page, 'ArrowRight');
      const n = await check();
      expect(n).toBeLessThanOrEqual(previous);
      previous = n;
    }
    expect(previous).toBeLessThan(start);
    await pressSlider(page, 'End');
    const fewest = await check();
    expect(fewest).toBeLessThan(previous);
    expect(fewest).toBeGreaterThanOrEqual(1);
    expect(await png()).toBeLessThan(pixelsStart);
    await pressSlider(page, 'Home');
    expect(await check()).toBe(start);

    // with every edge as a candidate the threshold stays, edges outside the circuit above it
    // join, and the loosest threshold draws all of them
    const before = (await api(page, (a) => a.state())).threshold;
    await page.check('#scope-all');
    await settle(page);
    expect((await api(page, (a) => a.state())).threshold).toBe(before);
    expect(await check()).toBeGreaterThanOrEqual(start);
    await pressSlider(page, 'Home');
    expect(await check()).toBe(Object.keys(files.planted.file.edges).length);

    // ACDC τ: the run's τ draws the saved circuit; raising τ drops edges, lowering it adds the ones that fell
    await page.uncheck('#scope-all');
    await page.selectOption('#threshold-mode', 'tau');
    await settle(page);
    expect((await api(page, (a) => a.state())).threshold).toBe(0.03);
    expect(await check()).toBe(start);
    await pressSlider(page, 'End');
    const d = buildReportData(files.planted.file);
    const keptAlways = d.edges.tauState.filter((s, i) => s === TAU_KEPT && d.edges.inGraph[i]).length;
    expect(await check()).toBe(keptAlways);
    await page.check('#scope-all');
    await settle(page);
    await pressSlider(page, 'Home');
    expect(await check()).toBeGreaterThan(start);
    expect(log.errors).toEqual([]);
    await page.close();
  });

  it('hovering a node shows its details; clicking pins them and highlights its neighbours', async () => {
    const { page, log } = await openPage(browser);
    await loadReport(page, files.planted.path);
    await settle(page, 4);
    const tooltip = page.locator('#tooltip');
    expect(await tooltip.isHidden()).toBe(true);
    const box = (await page.locator('#graph').boundingBox())!;
    const pos = (await api(page, (a) => a.nodePosition('a9.h9')))!;
    expect(pos).not.toBeNull();
    await page.mouse.move(box.x + pos.x, box.y + pos.y, { steps: 4 });
    await tooltip.waitFor({ state: 'visible', timeout: 10_000 });
    const text = await tooltip.textContent();
    expect(text).toContain('a9.h9');
    expect(text).toContain('attention head');
    expect(text).toContain('Inputs from');
    expect(text).toContain('Outputs to');
    expect(text).toContain('logits');
    await page.mouse.click(box.x + pos.x, box.y + pos.y);
    await settle(page);
    expect(await api(page, (a) => a.selection())).toEqual({ kind: 'node', index: buildReportData(files.planted.file).nodes.findIndex((n) => n.name === 'a9.h9') });
    expect(await page.locator('#details .item-title').textContent()).toBe('a9.h9');
    expect(await page.locator('#details button.chip').count()).toBeGreaterThan(2);
    // moving away hides the tooltip
    await page.mouse.move(box.x + 4, box.y + 4, { steps: 4 });
    await tooltip.waitFor({ state: 'hidden', timeout: 10_000 });

    // search by name and the sortable table reach the same details
    await page.fill('#search', 'a7.h3');
    await page.press('#search', 'Enter');
    expect(await page.locator('#details .item-title').textContent()).toBe('a7.h3');
    await page.click('#top-edges-table th[data-key="name"]');
    const names = await page.locator('#top-edges-table tbody td.name').allTextContents();
    expect(names).toEqual([...names].sort((a, b) => a.localeCompare(b)));
    await page.click('#top-edges-table th[data-key="score"]');
    const scores = (await page.locator('#top-edges-table tbody tr td:nth-child(3)').allTextContents()).map((s) => Number(s.replace('−', '-').replace('+', '')));
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    await page.click('#top-edges-table tbody tr:first-child');
    expect(await page.locator('#details').textContent()).toContain('Verified effect');

    // the force layout moves nodes and keeps the drawing
    const before = (await api(page, (a) => a.nodePosition('a9.h9')))!;
    await page.click('#layout-force');
    await page.waitForTimeout(700);
    expect(await api(page, (a) => a.layout())).toBe('force');
    const after = (await api(page, (a) => a.nodePosition('a9.h9')))!;
    expect(Math.hypot(after.x - before.x, after.y - before.y)).toBeGreaterThan(1);
    expect(await countColouredPixels(browser, await page.locator('#graph').screenshot())).toBeGreaterThan(1000);
    expect(log.errors).toEqual([]);
    await page.close();
  });

  it('shows hostile prompt and token strings as text and runs nothing', async () => {
    const { page, log } = await openPage(browser);
    await loadReport(page, files.xss.path);
    await settle(page);
    await page.waitForTimeout(300);
    const examples = (await page.locator('#examples').textContent()) ?? '';
    for (const s of XSS_STRINGS) expect(examples).toContain(s);
    expect(await page.locator('#examples .tokens .chip').allTextContents()).toEqual([XSS_STRINGS[0], XSS_STRINGS[1], '</script><script>alert(2)</script>']);
    expect(await page.locator('h1#title').textContent()).toBe(`task ${XSS_STRINGS[0]} · model ${XSS_STRINGS[1]}`);
    expect(await page.locator('#summary').textContent()).toContain(XSS_STRINGS[1]);
    expect(await page.locator('#sweeps h3').first().textContent()).toContain(XSS_STRINGS[0]);
    const dom = await page.evaluate(() => ({ imgs: document.querySelectorAll('img').length, scripts: document.scripts.length, onerror: document.querySelectorAll('[onerror]').length }));
    expect(dom).toEqual({ imgs: 0, scripts: 2, onerror: 0 });
    expect(log.dialogs).toEqual([]);
    expect(log.errors).toEqual([]);
    await page.close();
  });

  it('loads a GPT-2-small-sized graph (32,491 scored edges)', async () => {
    const { page, log } = await openPage(browser);
    const ms = await loadReport(page, files.big.path);
    await settle(page);
    console.log(`[report.browser] 12-layer 12-head report (32,491 edges) ready in ${ms.toFixed(0)} ms`);
    expect(Object.keys(files.big.file.edges)).toHaveLength(32491);
    expect(await edgeCountAttr(page)).toBe(400);
    expect(await api(page, (a) => a.renderedEdgeCount())).toBe(400);
    const t0 = performance.now();
    await page.check('#scope-all');
    await pressSlider(page, 'Home');
    expect(await edgeCountAttr(page)).toBe(32491);
    expect(await api(page, (a) => a.renderedEdgeCount())).toBe(32491);
    console.log(`[report.browser] drawing all 32,491 edges took ${(performance.now() - t0).toFixed(0)} ms`);
    expect(await countColouredPixels(browser, await page.locator('#graph').screenshot())).toBeGreaterThan(5000);
    expect(log.errors).toEqual([]);
    await page.close();
  });

  it('opens a comparison with a drawing per circuit and the IoU matrices', async () => {
    const { page, log } = await openPage(browser);
    await loadReport(page, files.compare.path);
    await settle(page, 4);
    const counts = await api(page, (a) => a.edgeCounts());
    expect(counts).toHaveLength(3);
    expect(counts[0]).toBe(Object.values(files.planted.file.edges).filter((e) => e.in_graph).length);
    for (let i = 0; i < 3; i++) expect(await countColouredPixels(browser, await page.locator(`#graph-${i}`).screenshot())).toBeGreaterThan(500);
    expect(await page.locator('#iou-edges rect title').count()).toBe(9);
    expect(await page.locator('#overlap-table tbody tr').count()).toBe(3);
    expect(log.errors).toEqual([]);
    await page.close();
  });
});
