import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { CircuitryError } from '../errors.js';

/**
 * Checkpoints of long runs (ACDC, the discovery pipeline): JSON files written atomically (a
 * temporary file in the same folder, then rename), so a run killed at any moment leaves either
 * the previous checkpoint or the new one, never half of one.
 */
export interface CheckpointStore<T> {
  /** Where it lives (for messages). */
  readonly path: string;
  load(): T | undefined;
  save(state: T): void;
  clear(): void;
}

export function writeJsonAtomic(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, JSON.stringify(value));
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** A checkpoint file; `load` throws a CircuitryError naming the file when it is not JSON. */
export function fileCheckpoint<T>(path: string): CheckpointStore<T> {
  return {
    path,
    load() {
      if (!existsSync(path)) return undefined;
      try {
        return JSON.parse(readFileSync(path, 'utf8')) as T;
      } catch {
        throw new CircuitryError(`${path}: the checkpoint is not valid JSON; delete it (or run with --fresh)`);
      }
    },
    save: (state) => writeJsonAtomic(path, state),
    clear: () => rmSync(path, { force: true }),
  };
}

/**
 * What to do with a checkpoint left by an earlier run, decided before any work: with `resume`
 * it must exist; with `fresh` it is deleted; otherwise its existence is an error that says how
 * to use it, so an interrupted run is never overwritten by accident.
 */
export function checkCheckpoint(path: string, opts: { resume?: boolean; fresh?: boolean; command?: string }): void {
  const exists = existsSync(path);
  if (opts.resume && opts.fresh) throw new CircuitryError('--resume and --fresh: give at most one of them');
  if (opts.resume) {
    if (!exists) throw new CircuitryError(`--resume: no checkpoint at ${path} (nothing to continue; run without --resume)`);
    return;
  }
  if (!exists) return;
  if (opts.fresh) {
    rmSync(path, { force: true });
    return;
  }
  const cmd = opts.command ? `${opts.command} ` : '';
  throw new CircuitryError(
    `a checkpoint of an interrupted run exists at ${path}: continue it with '${cmd}--resume', or start over with '${cmd}--fresh' (or delete the file)`,
  );
}
