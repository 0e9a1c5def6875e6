import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { RejectedJobError, type JobPayload, type JobResult } from './job.js';

/**
 * N child processes, each running whole pipelines one at a time (a pipeline is seconds to hours
 * of synchronous tensor work, so it must not share the event loop of whoever keeps BullMQ's
 * locks alive or draws the progress bar). A child that dies fails its job and is replaced.
 */

export type ParentMessage = { type: 'run'; id: number; payload: JobPayload };
export type ChildMessage =
  | { type: 'ready' }
  | { type: 'done'; id: number; result: JobResult }
  | { type: 'error'; id: number; message: string; rejected: boolean };

interface Task {
  readonly id: number;
  readonly payload: JobPayload;
  readonly resolve: (r: JobResult) => void;
  readonly reject: (e: Error) => void;
}

interface Slot {
  child: ChildProcess;
  task?: Task;
}

const CHILD = new URL(`./child${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

/** Node flags for the child: tsx's loader when running from TypeScript sources. */
function childExecArgv(): string[] {
  if (!CHILD.pathname.endsWith('.ts')) return [];
  const tsx = createRequire(import.meta.url).resolve('tsx');
  return ['--import', pathToFileURL(tsx).href];
}

export class ProcessPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private nextId = 1;
  private closed = false;

  constructor(
    readonly size: number,
    private readonly backend?: string,
  ) {}

  /** Runs one job in a child process. */
  run(payload: JobPayload): Promise<JobResult> {
    if (this.closed) return Promise.reject(new Error('the process pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, payload, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.slots.length < this.size && this.slots.length < this.queue.length + this.busy()) this.slots.push(this.spawn());
    for (const slot of this.slots) {
      if (slot.task || this.queue.length === 0) continue;
      slot.task = this.queue.shift()!;
      slot.child.send({ type: 'run', id: slot.task.id, payload: slot.task.payload } satisfies ParentMessage);
    }
  }

  private busy(): number {
    return this.slots.filter((s) => s.task).length;
  }

  private spawn(): Slot {
    const child = fork(fileURLToPath(CHILD), this.backend ? [this.backend] : [], { execArgv: childExecArgv(), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const slot: Slot = { child };
    child.on('message', (m: ChildMessage) => {
      if (m.type === 'ready' || !slot.task || slot.task.id !== m.id) return;
      const task = slot.task;
      slot.task = undefined;
      if (m.type === 'done') task.resolve(m.result);
      else task.reject(m.rejected ? new RejectedJobError(m.message) : new Error(m.message));
      this.dispatch();
    });
    child.on('exit', (code, signal) => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      if (slot.task) slot.task.reject(new Error(`the process running ${slot.task.payload.name} exited (${signal ?? `code ${code}`})`));
      slot.task = undefined;
      if (!this.closed) this.dispatch();
    });
    return slot;
  }

  /** Stops every child (a running job is abandoned: its promise rejects). */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.queue.splice(0)) t.reject(new Error('the process pool closed'));
    await Promise.all(
      this.slots.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.child.exitCode !== null || s.child.signalCode !== null) return resolve();
            s.child.once('exit', () => resolve());
            s.child.kill('SIGTERM');
          }),
      ),
    );
  }
}
