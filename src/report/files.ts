import { basename, dirname, extname, join, resolve } from 'node:path';
import { CircuitryError } from '../errors.js';
import type { CircuitFile } from '../graph/circuit-types.js';
import { readCircuitFile } from '../graph/circuit-json.js';
import { writeFileAtomic } from '../io/files.js';
import { renderComparison, renderReport, type ReportOptions } from './render.js';

/**
 * File side of the report commands: read a circuit JSON (with messages naming the file), write
 * the HTML atomically (temp file + rename, so no half-written report is ever left behind).
 */

/** Reads and validates a circuit file (the graph module's reader: messages name the file and key). */
export function readCircuitJson(path: string): CircuitFile {
  return readCircuitFile(path).file;
}

function stem(path: string): string {
  const b = basename(path);
  return extname(b) ? b.slice(0, -extname(b).length) : b;
}

export interface Written {
  out: string;
  bytes: number;
}

/** Where `circuitry report` writes by default: reports/<basename>.html. */
export function reportPath(input: string): string {
  return join('reports', `${stem(input)}.html`);
}

/** Where `circuitry compare` writes by default: reports/compare-<names>.html. */
export function comparisonPath(inputs: readonly string[]): string {
  return join('reports', `compare-${inputs.map(stem).join('-').slice(0, 80)}.html`);
}

/** `circuitry report`: circuit JSON → HTML (default reports/<basename>.html). */
export function writeReport(input: string, out?: string, opts: Omit<ReportOptions, 'source'> = {}): Written {
  const file = readCircuitJson(input);
  const html = renderReport(file, { ...opts, source: input });
  const target = out ?? reportPath(input);
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
  const target = out ?? comparisonPath(inputs);
  writeFileAtomic(target, html);
  return { out: target, bytes: Buffer.byteLength(html) };
}
