/**
 * Entry of a pool process (see pool.ts): runs the jobs its parent sends over IPC, one at a
 * time, and exits when the parent goes away.
 */
import { initBackend } from '../backend/index.js';
import { checkPayload, ModelCache, RejectedJobError, runJob } from './job.js';
import type { ChildMessage, ParentMessage } from './pool.js';

const send = (m: ChildMessage) => process.send?.(m);
const models = new ModelCache();
// listen before anything is awaited, so that no message sent at start-up is missed
const backend = initBackend(process.argv[2] || undefined);
process.on('disconnect', () => process.exit(0));
// Ctrl-C reaches the whole process group: the parent decides (a worker lets running jobs finish)
process.on('SIGINT', () => {});
process.on('message', (m: ParentMessage) => {
  if (m.type !== 'run') return;
  void (async () => {
    try {
      await backend;
      const { payload, config } = checkPayload(m.payload, `job ${m.id}`);
      send({ type: 'done', id: m.id, result: await runJob(payload, config, models) });
    } catch (e) {
      send({ type: 'error', id: m.id, message: (e as Error).message, rejected: e instanceof RejectedJobError });
    }
  })();
});
backend.then(
  () => send({ type: 'ready' }),
  () => {}, // reported with the first job
);
