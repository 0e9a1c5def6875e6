/**
 * The README's screenshots of a report and of a comparison, from the synthetic GPT-2-small
 * circuits of report-fixtures.ts, taken in headless chromium:
 *
 *   npx tsx test/helpers/report-screenshots.ts [OUT_DIR] [CIRCUIT.json ...]   (default docs/img)
 *
 * With circuit files (e.g. the graphs/ that `npm start` writes), the report shows the first and
 * the comparison all of them.
 *
 * Writes report.png, compare.png, and the two HTML pages they show (report.html, compare.html
 * in a temporary folder, printed).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { readCircuitFile } from '../../src/graph/circuit-json.js';
import { renderComparison, renderReport } from '../../src/report/render.js';
import { chromiumAvailable, CHROMIUM_PATH, launchChromium, loadReport, openPage, settle } from './report-browser.js';
import { plantedCircuit } from './report-fixtures.js';

async function main(): Promise<void> {
  if (!chromiumAvailable()) throw new Error(`no chromium at ${CHROMIUM_PATH} (apt-get install -y chromium, or set CHROMIUM_PATH)`);
  const outDir = resolve(process.argv[2] ?? 'docs/img');
  mkdirSync(outDir, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'circuitry-shots-'));
  const real = process.argv.slice(3);
  const files = real.length
    ? real.map((p) => ({ name: basename(p, '.json'), file: readCircuitFile(p).file }))
    : [
        { name: 'ioi (pipeline)', file: plantedCircuit() },
        { name: 'ioi (eap top-90)', file: plantedCircuit({ variant: 'eap' }) },
        { name: 'greater-than', file: plantedCircuit({ task: 'greater-than', seed: 11 }) },
      ];
  const reportHtml = join(work, 'report.html');
  writeFileSync(reportHtml, renderReport(files[0].file));
  const compareHtml = join(work, 'compare.html');
  writeFileSync(compareHtml, renderComparison(files));
  const browser = await launchChromium({ width: 1440, height: 940, scale: 2 });
  try {
    // The report: the drawing with a head's details in its hover card.
    {
      const { page, log } = await openPage(browser);
      await loadReport(page, reportHtml);
      await settle(page, 6);
      const box = (await page.locator('#graph').boundingBox())!;
      // the synthetic circuit's a10.h0, or the last head in a real circuit
      const head = real.length ? Object.entries(files[0].file.nodes).filter(([n, v]) => v.in_graph && /^a\d+\.h\d+$/.test(n)).pop()?.[0] : 'a10.h0';
      const pos = (await page.evaluate(`window.__circuitry.nodePosition('${head ?? 'logits'}')`)) as { x: number; y: number };
      await page.mouse.move(box.x + pos.x, box.y + pos.y, { steps: 5 });
      await page.locator('#tooltip').waitFor({ state: 'visible' });
      await settle(page, 4);
      await page.screenshot({ path: join(outDir, 'report.png'), clip: { x: 0, y: 0, width: 1440, height: 940 } });
      if (log.errors.length) throw new Error(`report page errors: ${log.errors.join('; ')}`);
      await page.close();
    }
    // The comparison: the three drawings and the IoU matrices.
    {
      const { page, log } = await openPage(browser);
      await loadReport(page, compareHtml);
      await settle(page, 6);
      await page.screenshot({ path: join(outDir, 'compare.png'), fullPage: true });
      if (log.errors.length) throw new Error(`comparison page errors: ${log.errors.join('; ')}`);
      await page.close();
    }
  } finally {
    await browser.close();
  }
  console.log(`wrote ${join(outDir, 'report.png')} and ${join(outDir, 'compare.png')} (pages in ${work})`);
}

await main();
