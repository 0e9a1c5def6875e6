import { accessSync, closeSync, constants, fsyncSync, mkdirSync, openSync, realpathSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { CircuitryError } from '../errors.js';

/**
 * Output files: checked before any work starts, written atomically at the end. A leaf module
 * (it imports only errors.ts), so every folder that writes files can use it.
 */

/** Kernel pseudo-filesystems: writing there is never what a user meant, and mkdir can loop on them. */
const PSEUDO_ROOTS = ['/proc', '/sys'];

function underPseudoRoot(path: string): string | undefined {
  return PSEUDO_ROOTS.find((root) => path === root || path.startsWith(root + sep));
}

/** The nearest existing ancestor of an absolute path (the path itself when it exists). */
function nearestExisting(path: string): string {
  let p = path;
  for (;;) {
    try {
      statSync(p);
      return p;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // ENOTDIR: a file sits where a folder is needed; the caller reports it from the ancestor
      if (code !== 'ENOENT' && code !== 'ENOTDIR') return p;
      const up = dirname(p);
      if (up === p) return p;
      p = up;
    }
  }
}

/**
 * Checks that `path` can be written as a file, without writing it: not under /proc or /sys, not
 * a folder, and its folder exists and is writable or can be created. `what` names the path in
 * messages (a flag such as `--out`, or a file and key). Cheap and never hangs, so commands call
 * it for every output before loading a model.
 */
export function checkOutputPath(path: string, what: string): void {
  if (path.trim() === '') throw new CircuitryError(`${what}: the output path is empty`);
  const abs = resolve(path);
  const pseudo = underPseudoRoot(abs);
  if (pseudo) throw new CircuitryError(`${what}: '${path}' is under ${pseudo}, a kernel filesystem; give a path to a regular file`);
  const existing = nearestExisting(abs);
  // symlinks could lead into /proc or /sys from elsewhere
  let real = existing;
  try {
    real = realpathSync(existing);
  } catch {
    // dangling or unreadable: the checks below report it
  }
  const realPseudo = underPseudoRoot(real);
  if (realPseudo) throw new CircuitryError(`${what}: '${path}' leads into ${realPseudo}, a kernel filesystem; give a path to a regular file`);
  let st;
  try {
    st = statSync(existing);
  } catch (e) {
    throw new CircuitryError(`${what}: cannot write '${path}' (${(e as Error).message})`);
  }
  if (existing === abs) {
    if (st.isDirectory()) throw new CircuitryError(`${what}: '${path}' is a folder; give a file name`);
    try {
      accessSync(abs, constants.W_OK);
    } catch {
      throw new CircuitryError(`${what}: '${path}' exists and is not writable`);
    }
    probe(dirname(abs), path, what);
    return;
  }
  if (!st.isDirectory()) throw new CircuitryError(`${what}: cannot create '${path}': '${existing}' is a file, not a folder`);
  probe(existing, path, what);
}

/** Creates and removes a temporary file in `dir`: the one test that also catches read-only mounts. */
function probe(dir: string, path: string, what: string): void {
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new CircuitryError(`${what}: cannot write '${path}': the folder '${dir}' is not writable`);
  }
  const tmp = join(dir, `.circuitry-probe.${process.pid}.${Math.random().toString(36).slice(2, 10)}`);
  try {
    closeSync(openSync(tmp, 'wx'));
    unlinkSync(tmp);
  } catch (e) {
    throw new CircuitryError(`${what}: cannot write '${path}': the folder '${dir}' does not accept files (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** Writes `text` to `path` through a temporary file in the same folder, flushed, then a rename. */
export function writeFileAtomic(path: string, text: string): void {
  const pseudo = underPseudoRoot(resolve(path));
  if (pseudo) throw new CircuitryError(`${path}: will not write under ${pseudo}, a kernel filesystem`);
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}.tmp`);
  try {
    mkdirSync(dir, { recursive: true });
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // the temporary file was never created (e.g. the folder could not be)
    }
    throw new CircuitryError(`${path}: could not write the file (${(err as Error).message})`);
  }
}
