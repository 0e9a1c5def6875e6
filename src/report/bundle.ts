import { buildSync } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { CircuitryError } from '../errors.js';

/**
 * The browser client (client/main.ts with sigma, graphology and ForceAtlas2) bundled by esbuild
 * into one IIFE, once per process. The result is safe to inline in a <script> element: it holds
 * no `</script` and no `<!--`.
 */
let cached: string | undefined;

export function clientBundle(): string {
  if (cached !== undefined) return cached;
  const entry = fileURLToPath(new URL('./client/main.ts', import.meta.url));
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
    });
    code = result.outputFiles[0].text;
  } catch (err) {
    throw new CircuitryError(`report: bundling the browser client (${entry}) failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  // Inside a script element only these sequences are special; both may appear in JS only within
  // strings, regular expressions or templates, where `<\/` and `<\!` mean the same thing.
  cached = code.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
  return cached;
}
