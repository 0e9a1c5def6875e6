import { Presets, SingleBar } from 'cli-progress';

import type { OnProgress } from '../patching/progress.js';

export interface ProgressOptions {
  /** Where to draw (default process.stderr, so that stdout stays clean for results). */
  readonly stream?: NodeJS.WriteStream;
  /** Draw the bar only once the work has run this long (default 400 ms): quick sweeps stay silent. */
  readonly delayMs?: number;
  /** Without a TTY, print a plain line at most this often (default 10 s), after the delay of one interval. */
  readonly plainIntervalMs?: number;
  /** Clock (for tests). */
  readonly now?: () => number;
}

/** A progress display: pass `update` as a library's `onProgress`, call `stop` when the work ends. */
export interface Progress {
  readonly update: OnProgress;
  stop(): void;
}

/**
 * A cli-progress bar with done/total and ETA for the CLI. On a TTY the bar appears only when the
 * work takes more than a moment (`delayMs`); without a TTY (logs, CI) a plain
 * "label: done/total, ETA" line is printed every `plainIntervalMs` of a long run, and nothing for
 * a short one. The library never draws: it only calls `onProgress`.
 */
export function createProgress(label: string, opts: ProgressOptions = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  const now = opts.now ?? (() => Date.now());
  const delay = opts.delayMs ?? 400;
  const interval = opts.plainIntervalMs ?? 10_000;
  const tty = stream.isTTY === true;
  const started = now();
  let bar: SingleBar | undefined;
  let lastLine = started;
  let printed = false;
  let stopped = false;

  const eta = (done: number, total: number): string => {
    if (done <= 0) return '?';
    const s = ((now() - started) / 1000 / done) * (total - done);
    return s >= 90 ? `${Math.round(s / 60)} min` : `${Math.max(0, Math.round(s))} s`;
  };

  return {
    update(done, total) {
      if (stopped) return;
      const t = now();
      if (tty) {
        if (!bar) {
          if (t - started < delay || done >= total) return;
          bar = new SingleBar(
            { stream, format: `${label} [{bar}] {value}/{total} | {percentage}% | ETA {eta_formatted}`, clearOnComplete: true, etaBuffer: 20 },
            Presets.shades_classic,
          );
          bar.start(total, done);
        } else {
          bar.setTotal(total);
          bar.update(done);
        }
      } else if (t - lastLine >= interval && done < total) {
        lastLine = t;
        printed = true;
        stream.write(`${label}: ${done}/${total} (${Math.round((100 * done) / Math.max(total, 1))}%), ETA ${eta(done, total)}\n`);
      }
    },
    stop() {
      if (stopped) return;
      stopped = true;
      if (bar) bar.stop();
      else if (printed) stream.write(`${label}: done in ${((now() - started) / 1000).toFixed(1)} s\n`);
    },
  };
}
