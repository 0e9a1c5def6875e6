// The Redis helpers live in scale/ (discover --redis uses them too); re-exported for the sweep.
export { checkRedis, connect, parseRedisUrl, redact, withTimeout, type RedisTarget } from '../scale/redis.js';
