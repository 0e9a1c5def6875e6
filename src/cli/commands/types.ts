import type { Argv } from 'yargs';

/**
 * One subcommand. `builder` declares its flags; `run` imports its implementation lazily (so
 * `--help` stays instant), does the work, prints, and returns the exit code.
 */
export interface Command {
  readonly command: string;
  readonly describe: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly builder: (y: Argv) => Argv<any>;
  readonly run: (args: Record<string, unknown>) => Promise<number | void>;
}
