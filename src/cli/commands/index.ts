import type { Command } from './types.js';
import { runCommand } from './run.js';
import { acdcCommand } from './acdc.js';
import { discoverCommand } from './discover.js';
import { evaluateCommand } from './evaluate.js';
import { startCommand, modelsCommand } from './start.js';
import { tasksCommand } from './tasks.js';
import { reportCommand } from './report.js';
import { compareCommand } from './compare.js';
import { patchCommand } from './patch.js';
import { attributeCommand } from './attribute.js';
import { traceCommand } from './trace.js';
import { steerCommand } from './steer.js';
import { directionCommand } from './direction.js';
import { searchCommand } from './search.js';
import { tokenizeCommand } from './tokenize.js';
import { sweepCommand } from './sweep.js';
import { workerCommand } from './worker.js';

/** Every subcommand, in the order --help lists them. */
export const commands: readonly Command[] = [
  startCommand,
  discoverCommand,
  sweepCommand,
  workerCommand,
  acdcCommand,
  evaluateCommand,
  attributeCommand,
  patchCommand,
  searchCommand,
  traceCommand,
  steerCommand,
  directionCommand,
  reportCommand,
  compareCommand,
  runCommand,
  tokenizeCommand,
  modelsCommand,
  tasksCommand,
];
