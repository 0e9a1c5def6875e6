import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | undefined;

/**
 * A full garbage collection now. The pool calls it once, after releasing the shared weights: a
 * SharedArrayBuffer goes only when every reference to it is collected, and this process may not
 * collect for many seconds (its JS heap barely grows while the workers compute), holding the
 * weights' size for nothing. Node exposes gc() through V8's --expose-gc flag, set here at run time.
 */
export function collectGarbage(): void {
  if (!gc) {
    const given = (globalThis as { gc?: () => void }).gc;
    if (given) gc = given;
    else {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as () => void;
    }
  }
  gc();
}
