import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { commands } from './commands/index.js';
import { CircuitryError } from '../errors.js';
import { UsageError } from './usage.js';
import { CPU_BACKEND_WARNING } from '../backend/notes.js';

/** Entry point of the `circuitry` command. Each subcommand lives in commands/<name>.ts. */
async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const parser = yargs(argv)
    .scriptName('circuitry')
    .option('backend', { type: 'string', describe: 'tensor backend: tensorflow | wasm | cpu (default: first that loads; env CIRCUITRY_BACKEND)', global: true })
    .option('verbose', { type: 'boolean', default: false, describe: 'print stack traces on errors', global: true })
    .middleware((a) => {
      if ((a.backend ?? process.env.CIRCUITRY_BACKEND) === 'cpu') console.error(CPU_BACKEND_WARNING);
    })
    .strict()
    // a flag given twice takes its last value rather than becoming an array
    .parserConfiguration({ 'duplicate-arguments-array': false })
    .demandCommand(1, 'give a command; see --help')
    .recommendCommands()
    .help()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      // yargs' own validation gives a message (or a YError); .check() functions throw UsageError themselves
      throw err === undefined || err === null || (err as Error).name === 'YError' ? new UsageError(err ? (err as Error).message : msg) : err;
    });
  for (const c of commands) {
    parser.command({
      command: c.command,
      describe: c.describe,
      builder: c.builder,
      handler: async (args: Record<string, unknown>) => {
        exitCode = (await c.run(args)) ?? 0;
      },
    });
  }
  try {
    await parser.parseAsync();
    return exitCode;
  } catch (err) {
    const verbose = argv.includes('--verbose');
    if (err instanceof UsageError) {
      console.error(`circuitry: ${err.message}\nrun 'circuitry --help' for usage`);
      return 2;
    }
    if (err instanceof CircuitryError) {
      console.error(`circuitry: error: ${err.message}`);
      if (verbose) console.error(err.stack);
      return 1;
    }
    console.error(`circuitry: internal error: ${err instanceof Error ? err.message : String(err)}`);
    if (verbose || !(err instanceof Error)) console.error(err instanceof Error ? err.stack : '');
    else console.error('(run with --verbose for the stack trace)');
    return 70;
  }
}

process.exitCode = await main(hideBin(process.argv));
