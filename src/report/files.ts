import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { CircuitryError } from '../errors.js';
import type { CircuitFile } from '../graph/circuit-types.js';
import { renderComparison, renderReport, type ReportOptions } from './render.js';

/**
 * File side of the report commands: read a circuit JSON (with messages naming the file), write
 * the HTML atomically (temp file + rename, so no half-written report is ever left behind).
 */

/** Reads and minimally checks a circuit file; the renderer checks the fields it draws. */
export function readCircuitJson(path: string): CircuitFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CircuitryError(`circuit file '${path}' not found`);
    if (code === 'EISDIR') throw new CircuitryError(`circuit file '${path}' is a directory, expected a JSON file`);
    throw new CircuitryError(`circuit file '${path}' could not be read: ${(err as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new CircuitryError(`circuit file '${path}' is not valid JSON: ${(err as Error).message}`);
  }
  const obj = data as Record<string, unknown>;
  if (typeof data !== 'object' || data === null || Array.isArray(data) || typeof obj.cfg !== 'object' || obj.cfg === null || typeof obj.edges !== 'object' || obj.edges === null) {
    throw new CircuitryError(`circuit file '${path}' is not a circuit: expected a JSON object with "cfg", "nodes" and "edges" (the EAP-IG / MIB circuit format)`);
  }
  return data as CircuitFile;
}

/** Writes `content` to `path` through a temporary file in the same folder and a rename. */
export function writeFileAtomic(path: string, content: string): void {
  const dir = dirname(resolve(path));
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new CircuitryError(`--out '${path}': cannot create folder '${dir}': ${(err as Error).message}`);
  }
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  try {
    writeFileSync(tmp, content);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new CircuitryError(`--out '${path}': cannot write the file: ${(err as Error).message}`);
  }
}

function stem(path: string): string {
  const b = basename(path);
  return extname(b) ? b.slice(0, -extname(b).length) : b;
}

export interface Written {
  out: string;
  bytes: number;
}

/** `circuitry report`: circuit JSON → HTML (default reports/<basename>.html). */
export function writeReport(input: string, out?: string, opts: Omit<ReportOptions, 'source'> = {}): Written {
  const file = readCircuitJson(input);
  const html = renderReport(file, { ...opts, source: input });
  const target = out ?? join('reports', `${stem(input)}.html`);
  writeFileAtomic(target, html);
  return { out: target, bytes: Buffer.byteLength(html) };
}

/** Display names for the compared files: their stems, made unique with the parent folder or an index. */
export function circuitNames(paths: readonly string[]): string[] {
  const stems = paths.map(stem);
  return stems.map((s, i) => {
    if (stems.filter((x) => x === s).length === 1) return s;
    const parent = basename(dirname(resolve(paths[i])));
    const withParent = `${parent}/${s}`;
    const clash = paths.some((p, j) => j !== i && `${basename(dirname(resolve(p)))}/${stems[j]}` === withParent);
    return clash ? `${s} (${i + 1})` : withParent;
  });
}

/** `circuitry compare`: two or more circuit JSON files → one comparison page. */
export function writeComparison(inputs: readonly string[], out?: string): Written {
  if (inputs.length < 2) throw new CircuitryError(`compare: expected at least two circuit files, got ${inputs.length}`);
  const names = circuitNames(inputs);
  const html = renderComparison(inputs.map((p, i) => ({ name: names[i], file: readCircuitJson(p), source: p })));
  const target = out ?? join('reports', `compare-${inputs.map(stem).join('-').slice(0, 80)}.html`);
  writeFileAtomic(target, html);
  return { out: target, bytes: Buffer.byteLength(html) };
}
