import type { Command } from './types.js';

/** Every subcommand, in the order --help lists them. */
export const commands: readonly Command[] = [];
