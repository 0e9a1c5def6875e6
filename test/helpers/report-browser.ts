import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/**
 * Headless Debian chromium for the report tests and the screenshot script. The browser is
 * /usr/bin/chromium (override with CHROMIUM_PATH). WebGL runs on SwiftShader through ANGLE,
 * asked for explicitly so it does not depend on chromium's software-fallback policy.
 */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
];

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM_PATH);
}

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A fresh profile in a temporary folder, removed on close. */
export async function launchChromium(opts: { width?: number; height?: number; scale?: number } = {}): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'circuitry-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: opts.width ?? 1440, height: opts.height ?? 1000 },
    deviceScaleFactor: opts.scale ?? 1,
    offline: true,
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export interface PageLog {
  errors: string[];
  dialogs: string[];
}

/** A new page that records console errors, uncaught exceptions and dialogs (dismissed). */
export async function openPage(browser: Browser): Promise<{ page: Page; log: PageLog }> {
  const page = await browser.context.newPage();
  const log: PageLog = { errors: [], dialogs: [] };
  page.on('console', (m) => {
    if (m.type() === 'error') log.errors.push(m.text());
  });
  page.on('pageerror', (e) => log.errors.push(`uncaught: ${e.message}`));
  page.on('dialog', (d) => {
    log.dialogs.push(`${d.type()}: ${d.message()}`);
    void d.dismiss();
  });
  return { page, log };
}

/** Opens a report file and waits for the client to finish building the page; returns the milliseconds it took. */
export async function loadReport(page: Page, file: string, timeout = 120_000): Promise<number> {
  const t0 = performance.now();
  await page.goto(`file://${file}`, { timeout });
  await page.waitForFunction('window.__circuitry !== undefined && window.__circuitry.ready === true', null, { timeout });
  return performance.now() - t0;
}

// Code run in the page is passed as source text: tsx (used by the screenshot script) wraps
// functions with a `__name` helper that does not exist in the page.

/** Lets sigma finish its scheduled frames. */
export async function settle(page: Page, frames = 3): Promise<void> {
  await page.evaluate(`new Promise((resolve) => {
    let left = ${Math.max(1, Math.floor(frames))};
    const tick = () => (--left <= 0 ? resolve(true) : requestAnimationFrame(tick));
    requestAnimationFrame(tick);
  })`);
}

const COUNT_COLOURED = `async (b64) => {
  const img = new Image();
  img.src = 'data:image/png;base64,' + b64;
  await img.decode();
  const canvas = document.createElement('canvas');
  canvas.width = img.width;
  canvas.height = img.height;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, img.width, img.height).data;
  let n = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (Math.max(data[i], data[i + 1], data[i + 2]) - Math.min(data[i], data[i + 1], data[i + 2]) > 60) n++;
  }
  return n;
}`;

/**
 * Counts the saturated pixels of a PNG (max − min channel > 60): the coloured nodes and edges
 * of a drawing, but not its grey labels, faint inactive nodes or white background. The PNG is
 * decoded by the browser itself, in a blank page.
 */
export async function countColouredPixels(browser: Browser, png: Buffer): Promise<number> {
  const page = await browser.context.newPage();
  try {
    return (await page.evaluate(`(${COUNT_COLOURED})(${JSON.stringify(png.toString('base64'))})`)) as number;
  } finally {
    await page.close();
  }
}
