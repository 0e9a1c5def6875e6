import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

/**
 * A throwaway redis-server on a free loopback port, no persistence (`--save '' --appendonly no`):
 * start it in a test, `stop()` it after. `restart()` kills it and starts a fresh (empty) one on
 * the same port, as a crashed and restarted Redis without persistence would be.
 */
export interface RedisServer {
  readonly port: number;
  readonly url: string;
  stop(): Promise<void>;
  restart(): Promise<void>;
}

export const HAVE_REDIS = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).status === 0;

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPing(port: number, password?: string, timeoutMs = 10_000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const c = new Redis({ host: '127.0.0.1', port, password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
    c.on('error', () => {});
    try {
      await c.connect();
      await c.ping();
      return;
    } catch {
      if (Date.now() - t0 > timeoutMs) throw new Error(`redis-server on port ${port} did not answer within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      c.disconnect();
    }
  }
}

/**
 * A CA and a server certificate for localhost / 127.0.0.1 (openssl), for a TLS redis-server.
 * Clients trust the CA through NODE_EXTRA_CA_CERTS=<dir>/ca.pem.
 */
export function makeTlsCertificates(): { dir: string; ca: string; args: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'circuitry-tls-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=circuitry test CA');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf');
  const f = (n: string) => join(dir, n);
  return { dir, ca: f('ca.pem'), args: ['--tls-cert-file', f('server.pem'), '--tls-key-file', f('server.key'), '--tls-ca-cert-file', f('ca.pem'), '--tls-auth-clients', 'no'] };
}

export const HAVE_OPENSSL = spawnSync('openssl', ['version'], { encoding: 'utf8' }).status === 0;

/**
 * A TLS-only redis-server with a password; `url` is its rediss:// URL. The readiness check
 * connects to a plain port first, so this one listens on both and the test uses the TLS one.
 */
export async function startTlsRedis(password: string): Promise<RedisServer & { ca: string; tlsPort: number }> {
  const certs = makeTlsCertificates();
  const tlsPort = await freePort();
  const server = await startRedis(['--tls-port', String(tlsPort), '--requirepass', password, ...certs.args], password);
  return { ...server, url: `rediss://:${encodeURIComponent(password)}@localhost:${tlsPort}`, ca: certs.ca, tlsPort };
}

export async function startRedis(extraArgs: string[] = [], password?: string): Promise<RedisServer> {
  const port = await freePort();
  let proc: ChildProcess | undefined;
  const launch = async () => {
    proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs], { stdio: 'ignore' });
    await waitForPing(port, password);
  };
  const kill = () =>
    new Promise<void>((resolve) => {
      const p = proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return resolve();
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: kill,
    restart: async () => {
      await kill();
      await launch();
    },
  };
}
