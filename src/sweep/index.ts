export { runSweep, checkWorkerCount, type SweepOptions, type SweepSummary } from './sweep.js';
export { runWorker, type WorkerOptions } from './worker.js';
export { readSweepPlan, planSweep, jobKey, canonicalJson, type SweepPlan, type SweepItem, type GridValue } from './spec.js';
export { checkPayload, runJob, jobPayload, ModelCache, type JobPayload, type JobResult } from './job.js';
export { parseRedisUrl, redact, checkRedis, type RedisTarget } from './redis.js';
export { DEFAULT_QUEUE } from './queue.js';
