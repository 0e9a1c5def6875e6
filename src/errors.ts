/**
 * The one error type for bad input. Its message names what was wrong (file, field, flag,
 * tensor) and what was expected; the CLI prints it without a stack trace and exits non-zero.
 */
export class CircuitryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CircuitryError';
  }
}

/** Throws a CircuitryError when `cond` is false. */
export function check(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new CircuitryError(typeof message === 'string' ? message : message());
}

/**
 * A long run stopped because its AbortSignal fired (Ctrl-C): not a failure of the input. The
 * work finished before it is in the run's checkpoint.
 */
export class InterruptedError extends Error {
  constructor(message = 'interrupted') {
    super(message);
    this.name = 'InterruptedError';
  }
}

/** Lets signal handlers (Ctrl-C) run, then throws InterruptedError if `signal` has fired. */
export async function checkpointPause(signal: AbortSignal | undefined): Promise<void> {
  await new Promise<void>((r) => setImmediate(r));
  if (signal?.aborted) throw new InterruptedError();
}
