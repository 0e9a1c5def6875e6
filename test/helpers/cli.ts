import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/** The repository root and the CLI as a user runs it (`node bin/circuitry.js`, which `npx circuitry` runs). */
export const ROOT = join(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'bin', 'circuitry.js');

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Spawns `circuitry ...args` in `cwd` and waits for it. */
export function circuitry(args: readonly string[], cwd = ROOT, timeoutMs = 600_000): CliRun {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, CIRCUITRY_BACKEND: process.env.CIRCUITRY_BACKEND ?? 'wasm' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, seconds: (performance.now() - t0) / 1000 };
}

/**
 * A shell command line split into words as sh would for the README's lines: double and single
 * quotes group words, an unquoted # starts a comment.
 */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (const ch of line) {
    if (quote) {
      if (ch === quote) quote = undefined;
      else cur += ch;
      continue;
    }
    if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (ch === '#' && !inWord) break;
    else if (/\s/u.test(ch)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (quote) throw new Error(`unterminated quote in: ${line}`);
  if (inWord) words.push(cur);
  return words;
}
