import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A loopback stand-in for the HuggingFace hub, for download tests that never touch the
 * internet: the API endpoints @huggingface/hub calls (`/api/models/{id}/revision/{rev}`, POST
 * `/api/models/{id}/paths-info/{rev}`) and `resolve`. Mirrors the hub's observable behaviour:
 * x-repo-commit and etag headers, 404/401 with x-error-code, byte ranges, and safetensors files
 * served as LFS blobs through a redirect to a "CDN" path (on this server or on `cdnEndpoint`).
 */
export interface FakeRepo {
  readonly files: Record<string, Buffer>;
  readonly commit: string;
  /** serve this file cut short: headers promise the full length, the socket closes halfway */
  readonly truncate?: string;
  /** serve this file with an x-linked-etag that is not its sha256 */
  readonly wrongEtag?: string;
}

export interface RequestLog {
  readonly method: string;
  readonly path: string;
  readonly authorization?: string;
}

export interface FakeHub {
  readonly endpoint: string;
  readonly requests: RequestLog[];
  close(): Promise<void>;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const sha1 = (b: Buffer): string => createHash('sha1').update(b).digest('hex');

export async function startFakeHub(repos: Record<string, FakeRepo>, opts: { cdnEndpoint?: string; unauthorizedMissing?: boolean } = {}): Promise<FakeHub> {
  const requests: RequestLog[] = [];
  const blobs = new Map<string, { body: Buffer; truncate: boolean }>();
  for (const repo of Object.values(repos)) {
    for (const [name, body] of Object.entries(repo.files)) blobs.set(sha256(body), { body, truncate: repo.truncate === name });
  }
  const handler = (req: IncomingMessage, res: ServerResponse, body: string): void => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const method = req.method ?? 'GET';
    requests.push({ method, path, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
    const fail = (status: number, code?: string): void => {
      res.writeHead(status, { 'content-type': 'application/json', ...(code ? { 'x-error-code': code } : {}) });
      res.end(`{"error": "${code ?? status}"}`);
    };
    const json = (value: unknown): void => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    /** A body, or the byte range the request asks for (206 with content-range). */
    const send = (data: Buffer, headers: Record<string, string | number>): boolean => {
      const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      if (!range) {
        res.writeHead(200, { ...headers, 'content-length': data.length });
        return true;
      }
      const [from, to] = [Number(range[1]), Math.min(Number(range[2]), data.length - 1)];
      res.writeHead(206, { ...headers, 'content-length': to - from + 1, 'content-range': `bytes ${from}-${to}/${data.length}` });
      res.end(data.subarray(from, to + 1));
      return false;
    };
    const api = /^\/api\/models\/(.+?)\/(revision|paths-info)\/([^/]+)$/.exec(path);
    if (api) {
      const [, id, what, rev] = api;
      const repo = repos[id];
      if (!repo) return opts.unauthorizedMissing ? fail(401, 'RepoNotFound') : fail(404, 'RepoNotFound');
      if (rev !== 'main' && rev !== repo.commit) return fail(404, 'RevisionNotFound');
      if (what === 'revision') return json({ id, _id: id, sha: repo.commit });
      const asked = (JSON.parse(body) as { paths: string[] }).paths;
      return json(
        asked
          .filter((f) => repo.files[f])
          .map((f) => {
            const data = repo.files[f];
            const lfs = f.endsWith('.safetensors') ? { lfs: { oid: repo.wrongEtag === f ? '0'.repeat(64) : sha256(data), size: data.length, pointerSize: 134 } } : {};
            return { type: 'file', path: f, oid: sha1(data), size: data.length, ...lfs, lastCommit: { id: repo.commit, title: 'add', date: '2026-01-01T00:00:00.000Z' } };
          }),
      );
    }
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(path);
    if (cdn) {
      const blob = blobs.get(cdn[1]);
      if (!blob) return fail(404);
      if (!send(blob.body, { etag: `"${cdn[1]}"` })) return;
      if (blob.truncate) {
        res.write(blob.body.subarray(0, blob.body.length >> 1));
        res.flushHeaders();
        setTimeout(() => res.destroy(), 20);
        return;
      }
      res.end(blob.body);
      return;
    }
    const m = /^\/(.+?)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (!m) return fail(400);
    const [, id, rev, file] = m;
    const repo = repos[id];
    if (!repo) return opts.unauthorizedMissing ? fail(401, 'RepoNotFound') : fail(404);
    if (rev !== 'main' && rev !== repo.commit) return fail(404, 'RevisionNotFound');
    const data = repo.files[file];
    if (!data) {
      res.writeHead(404, { 'x-error-code': 'EntryNotFound', 'x-repo-commit': repo.commit });
      res.end('Entry not found');
      return;
    }
    if (file.endsWith('.safetensors')) {
      // LFS: the hub answers with a redirect that carries the commit and the sha256 etag
      const etag = repo.wrongEtag === file ? '0'.repeat(64) : sha256(data);
      res.writeHead(302, {
        location: `${opts.cdnEndpoint ?? ''}/cdn/${sha256(data)}`,
        'x-repo-commit': repo.commit,
        'x-linked-etag': `"${etag}"`,
        'x-linked-size': data.length,
      });
      res.end();
      return;
    }
    if (send(data, { 'x-repo-commit': repo.commit, etag: `"${sha1(data)}"` })) res.end(data);
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handler(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

/** A port with nothing listening (bound, then released). */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((ok) => s.close(() => ok()));
  return port;
}
