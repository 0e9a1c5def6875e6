import { buildSync } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { CircuitryError } from '../errors.js';

/**
 * The browser clients bundled by esbuild into one IIFE each, once per process: client/main.ts
 * (sigma, graphology and ForceAtlas2) for every report, and client/live-main.ts for live reports
 * (the same page plus tfjs and the patching engine, from the CLI's own source). The result is
 * safe to inline in a <script> element: it holds no `</script` and no `<!--`.
 */
const cached = new Map<string, string>();

function bundle(file: string, alias: Record<string, string> = {}): string {
  const hit = cached.get(file);
  if (hit !== undefined) return hit;
  const entry = fileURLToPath(new URL(file, import.meta.url));
  let code: string;
  try {
    const result = buildSync({
      entryPoints: [entry],
      bundle: true,
      write: false,
      format: 'iife',
      platform: 'browser',
      target: ['es2020'],
      // CIRCUITRY_REPORT_MINIFY=0 keeps names readable for profiling the page
      minify: process.env.CIRCUITRY_REPORT_MINIFY !== '0',
      legalComments: 'none',
      charset: 'utf8',
      logLevel: 'silent',
      define: { 'process.env.NODE_ENV': '"production"' },
      alias,
    });
    code = result.outputFiles[0].text;
  } catch (err) {
    throw new CircuitryError(`report: bundling the browser client (${entry}) failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  // Inside a script element only these sequences are special; both may appear in JS only within
  // strings, regular expressions or templates, where `<\/` and `<\!` mean the same thing.
  const safe = code.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
  cached.set(file, safe);
  return safe;
}

export function clientBundle(): string {
  return bundle('./client/main.ts');
}

/** The live report's client: the page, tfjs (wasm, webgl, cpu) and the masked-forward engine. */
export function liveClientBundle(): string {
  // node:fs (imported by src/backend/simd.ts, used only to register the SIMD kernels in Node) → a stub
  return bundle('./client/live-main.ts', { 'node:fs': fileURLToPath(new URL('./client/no-fs.ts', import.meta.url)) });
}
