import { isIP } from 'node:net';
import { Redis, type RedisOptions } from 'ioredis';
import { CircuitryError } from '../errors.js';

/**
 * Redis connections for sweeps, discover --redis and workers: `redis://[user:password@]host[:port][/db]`, or
 * `rediss://…` for TLS (certificates checked against Node's CAs; add a private CA with
 * NODE_EXTRA_CA_CERTS). Messages never show the password.
 */

export interface RedisTarget {
  /** The URL with its password replaced by ***, for messages. */
  readonly label: string;
  readonly options: RedisOptions;
}

export function parseRedisUrl(url: string, flag = '--redis'): RedisTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new CircuitryError(`${flag}: expected a URL such as redis://host:6379 or rediss://:password@host:6380/0, got '${redact(url)}'`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new CircuitryError(`${flag}: expected a redis:// or rediss:// URL, got '${u.protocol}//…'`);
  if (!u.hostname) throw new CircuitryError(`${flag}: the URL names no host`);
  const port = u.port ? Number(u.port) : 6379;
  const dbText = u.pathname.replace(/^\//, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0) throw new CircuitryError(`${flag}: the database (the URL's path) must be a number ≥ 0, got '${dbText}'`);
  const label = redact(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const options: RedisOptions = {
    host,
    port,
    db,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    // certificates are checked against the host name (SNI only for names, not addresses)
    tls: u.protocol === 'rediss:' ? (isIP(host) ? {} : { servername: host }) : undefined,
  };
  return { label, options };
}

/** The URL with any password hidden. */
export function redact(url: string): string {
  return url.replace(/^(rediss?:\/\/)([^@/]*)@/i, (_, scheme: string, auth: string) => `${scheme}${auth.includes(':') ? `${auth.split(':')[0]}:***` : '***'}@`);
}

/** Connects once, with no retries, and PINGs: a wrong URL fails in seconds, not in a hang. */
export async function checkRedis(target: RedisTarget, timeoutMs = 5000): Promise<void> {
  const client = new Redis({ ...target.options, lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  let lastError: Error | undefined;
  client.on('error', (e: Error) => (lastError = e));
  try {
    await withTimeout(
      (async () => {
        await client.connect();
        await client.ping();
      })(),
      timeoutMs + 1000,
    );
  } catch (e) {
    const why = (lastError ?? (e as Error)).message || String(e);
    throw new CircuitryError(`--redis: cannot reach Redis at ${target.label} (${why})`);
  } finally {
    client.disconnect();
  }
}

/** A connection for BullMQ: reconnects for ever (BullMQ requires maxRetriesPerRequest: null). */
export function connect(target: RedisTarget): Redis {
  const client = new Redis({ ...target.options, maxRetriesPerRequest: null, retryStrategy: (times) => Math.min(200 * times, 2000) });
  client.on('error', () => {}); // reconnection is ioredis' job; the callers report outages
  return client;
}

export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}
