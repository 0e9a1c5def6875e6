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
