import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, copyFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { CircuitryError } from '../errors.js';
import { CONFIG_FILE, INDEX_FILE, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE, shardsOfIndex } from './checkpoint.js';

/**
 * Model names -> folders. A local path is used as it is; anything else is a HuggingFace hub id,
 * looked up in (and, when online, downloaded into) the HF cache with the layout huggingface_hub
 * uses, so models already fetched by Python tools are found and ours are found by them:
 *
 *   $HF_HUB_CACHE (default $HF_HOME/hub, HF_HOME default ~/.cache/huggingface)
 *     models--{org}--{name}/
 *       refs/{revision}                 the commit hash the revision (branch) points to
 *       blobs/{etag}                    file contents
 *       snapshots/{commit}/{file}       symlinks to the blobs (plain copies where symlinks fail)
 */

export interface ResolvedModel {
  readonly dir: string;
  readonly kind: 'local' | 'hub';
}

export interface ResolveOptions {
  /** branch, tag or commit hash on the hub (default 'main') */
  readonly revision?: string;
  /** environment to read HF_HOME, HF_HUB_CACHE, HF_ENDPOINT, HF_HUB_OFFLINE, HF_TOKEN from (default process.env) */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** progress messages ("downloading gpt2/model.safetensors (548 MB)") */
  readonly log?: (message: string) => void;
}

type Env = Readonly<Record<string, string | undefined>>;

const HUB_ID = /^(?:[A-Za-z0-9][\w.-]*\/)?[A-Za-z0-9][\w.-]*$/;
const COMMIT = /^[0-9a-f]{40}$/;

/** The hub cache root: HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub. */
export function hubCacheDir(env: Env = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  const home = env.HF_HOME || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'huggingface');
  return join(home, 'hub');
}

/** The cache folder of one model repository. */
export function repoCacheDir(id: string, env: Env = process.env): string {
  return join(hubCacheDir(env), `models--${id.split('/').join('--')}`);
}

function isOffline(env: Env): boolean {
  return ['1', 'ON', 'YES', 'TRUE'].includes((env.HF_HUB_OFFLINE ?? '').toUpperCase());
}

/** The snapshot folder a revision points to in the cache, if any (complete or not). */
function findSnapshot(repoDir: string, revision: string): string | undefined {
  const snapshots = join(repoDir, 'snapshots');
  if (COMMIT.test(revision)) return existsSync(join(snapshots, revision)) ? join(snapshots, revision) : undefined;
  const ref = join(repoDir, 'refs', revision);
  if (existsSync(ref)) {
    const commit = readFileSync(ref, 'utf8').trim();
    return existsSync(join(snapshots, commit)) ? join(snapshots, commit) : undefined;
  }
  // no refs (a hand-made or copied cache): the one snapshot there is, for the default branch only
  if (revision === 'main' && existsSync(snapshots)) {
    const dirs = readdirSync(snapshots).filter((d) => statSync(join(snapshots, d)).isDirectory());
    if (dirs.length === 1) return join(snapshots, dirs[0]);
  }
  return undefined;
}

/** Config plus safetensors weights (every shard of an index) are present. */
function missingFiles(snapshot: string): string[] {
  const missing: string[] = [];
  if (!existsSync(join(snapshot, CONFIG_FILE))) missing.push(CONFIG_FILE);
  if (existsSync(join(snapshot, WEIGHTS_FILE))) return missing;
  const index = join(snapshot, INDEX_FILE);
  if (!existsSync(index)) return [...missing, WEIGHTS_FILE];
  try {
    const { shards } = shardsOfIndex(JSON.parse(readFileSync(index, 'utf8')), index);
    return [...missing, ...shards.filter((s) => !existsSync(join(snapshot, s)))];
  } catch {
    return missing; // a corrupt index is reported by readCheckpointFolder, naming the file
  }
}

/**
 * Resolves a model name to a folder: an existing local path, or a hub id found in the HF cache
 * or downloaded into it (config.json, model.safetensors or its index and shards, tokenizer.json
 * and tokenizer_config.json when the repository has them). Zoo names are resolved by the caller before this.
 */
export async function resolveModelPath(name: string, opts: ResolveOptions = {}): Promise<ResolvedModel> {
  const env = opts.env ?? process.env;
  const path = name.startsWith('~/') ? join(homedir(), name.slice(2)) : name;
  if (existsSync(path)) {
    if (!statSync(path).isDirectory()) {
      throw new CircuitryError(`model '${name}': ${resolve(path)} is a file; expected a model folder (with ${CONFIG_FILE} and ${WEIGHTS_FILE})`);
    }
    return { dir: resolve(path), kind: 'local' };
  }
  const looksLikePath = isAbsolute(path) || /^\.\.?([/\\]|$)/.test(path) || path.includes('\\') || path.split('/').length > 2;
  if (looksLikePath) throw new CircuitryError(`model folder '${name}' does not exist`);
  if (!HUB_ID.test(name) || name.includes('..')) {
    throw new CircuitryError(`model '${name}' is neither an existing folder nor a HuggingFace model id (expected 'name' or 'org/name')`);
  }

  const revision = opts.revision ?? 'main';
  const repoDir = repoCacheDir(name, env);
  const cached = findSnapshot(repoDir, revision);
  const missing = cached ? missingFiles(cached) : [];
  if (cached && missing.length === 0) return { dir: cached, kind: 'hub' };

  const notCached = (reason: string): CircuitryError => {
    const partial = cached ? `; the cached snapshot ${cached} lacks ${missing.join(', ')}` : '';
    return new CircuitryError(
      `model '${name}' is not in the HuggingFace cache (${repoDir}) and could not be downloaded (${reason})${partial}; ` +
        `download it with \`huggingface-cli download ${name} --include '*.json' '*.safetensors'\` or pass a local folder`,
    );
  };
  if (isOffline(env)) throw notCached('HF_HUB_OFFLINE is set');
  try {
    return { dir: await download(name, revision, repoDir, env, opts.log), kind: 'hub' };
  } catch (e) {
    if (e instanceof CircuitryError) throw e;
    throw notCached(e instanceof TransferError ? `${e.file}: ${e.reason}` : networkReason(e));
  }
}

/** A network or file-system failure while fetching one file (anything but a hub answer). */
class TransferError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
  }
}

/** 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9' -> the cause's message, with its code once. */
function networkReason(e: unknown): string {
  const err = e as Error & { cause?: Error & { code?: string } };
  const cause = err.cause;
  if (!cause) return err.message || String(e);
  return cause.code && !cause.message.includes(cause.code) ? `${cause.code}: ${cause.message}` : cause.message || err.message;
}

async function transfer<T>(file: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof CircuitryError) throw e;
    throw new TransferError(file, networkReason(e));
  }
}

interface HubResponse {
  readonly file: string;
  readonly url: string;
  readonly res: Response;
  /** from the hub's own responses (the CDN's lack them): commit, etag, error code */
  readonly commit?: string;
  readonly etag?: string;
  /** x-linked-etag: an LFS file's sha256 */
  readonly lfsSha256?: string;
  readonly errorCode?: string;
}

interface HubContext {
  readonly id: string;
  readonly endpoint: string;
  readonly token?: string;
  readonly log?: (message: string) => void;
}

/**
 * GET {endpoint}/{id}/resolve/{rev}/{file}, following redirects by hand: the hub's first
 * response carries the commit and etag headers; the CDN it redirects large files to does not.
 * The token goes to the hub's origin only.
 */
async function hubGet(ctx: HubContext, rev: string, file: string): Promise<HubResponse> {
  const url = `${ctx.endpoint}/${ctx.id}/resolve/${encodeURIComponent(rev)}/${file.split('/').map(encodeURIComponent).join('/')}`;
  const origin = new URL(url).origin;
  let next = url;
  const hops: Headers[] = [];
  // the first hop that sends a header wins (a renamed repo adds a same-origin redirect first)
  const header = (name: string): string | undefined => hops.map((h) => h.get(name)).find((v) => v != null) ?? undefined;
  for (let hop = 0; hop < 10; hop++) {
    const headers: Record<string, string> = {};
    if (ctx.token && new URL(next).origin === origin) headers.authorization = `Bearer ${ctx.token}`;
    const res = await fetch(next, { redirect: 'manual', headers });
    hops.push(res.headers);
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel();
      next = new URL(location, next).toString();
      continue;
    }
    const clean = (v: string | undefined): string | undefined => v?.replace(/^W\//, '').replace(/"/g, '') || undefined;
    const lfsSha256 = clean(header('x-linked-etag'));
    return { file, url, res, commit: header('x-repo-commit'), etag: lfsSha256 ?? clean(header('etag')), lfsSha256, errorCode: header('x-error-code') };
  }
  throw new CircuitryError(`${url}: too many redirects`);
}

function isMissing(r: HubResponse): boolean {
  return r.res.status === 404 || r.errorCode === 'EntryNotFound';
}

/** An HTTP failure as a CircuitryError naming the model, file and status. */
function httpError(ctx: HubContext, r: HubResponse, revision: string): CircuitryError {
  const status = `${r.url} returned HTTP ${r.res.status}`;
  if (r.errorCode === 'RepoNotFound' || (r.file === CONFIG_FILE && r.res.status === 404 && !r.errorCode)) {
    return new CircuitryError(`model '${ctx.id}' was not found on the HuggingFace hub (${status}); check the id, or set HF_TOKEN if it is private`);
  }
  if (r.errorCode === 'RevisionNotFound') return new CircuitryError(`model '${ctx.id}' has no revision '${revision}' on the HuggingFace hub (${status})`);
  if (r.errorCode === 'EntryNotFound' || r.res.status === 404) {
    return new CircuitryError(`model '${ctx.id}' has no ${r.file} on the HuggingFace hub (${status})`);
  }
  if (r.errorCode === 'GatedRepo' || r.res.status === 401 || r.res.status === 403) {
    return new CircuitryError(`model '${ctx.id}' needs authorization (${status}): it may be gated or private; accept its terms on the hub and set HF_TOKEN`);
  }
  return new CircuitryError(`downloading ${r.file} of model '${ctx.id}' failed (${status})`);
}

function formatBytes(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(0)} MB` : `${(n / 1e3).toFixed(0)} kB`;
}

/**
 * Streams a response body into blobs/ (temp name, then rename) and links it from the snapshot.
 * An LFS file's linked etag is its sha256, which is checked. Blobs are named by the etag, as
 * huggingface_hub names them, or by the sha256 when the server sent no usable etag.
 */
async function store(ctx: HubContext, r: HubResponse, repoDir: string, snapshot: string): Promise<void> {
  const blobs = join(repoDir, 'blobs');
  mkdirSync(blobs, { recursive: true });
  const size = Number(r.res.headers.get('content-length') ?? NaN);
  ctx.log?.(`downloading ${ctx.id}/${r.file}${Number.isFinite(size) ? ` (${formatBytes(size)})` : ''}`);
  const tmp = join(blobs, `${randomBytes(8).toString('hex')}.incomplete`);
  const sha = createHash('sha256');
  let bytes = 0;
  try {
    if (!r.res.body) throw new CircuitryError(`${r.url}: empty response body`);
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        sha.update(chunk);
        bytes += chunk.length;
        done(null, chunk);
      },
    });
    await pipeline(Readable.fromWeb(r.res.body as WebReadableStream), tap, createWriteStream(tmp));
    if (Number.isFinite(size) && bytes !== size) {
      throw new CircuitryError(`downloading ${r.file} of model '${ctx.id}': got ${bytes} bytes, expected ${size} (connection cut?)`);
    }
    const digest = sha.digest('hex');
    if (r.lfsSha256 && /^[0-9a-f]{64}$/.test(r.lfsSha256) && r.lfsSha256 !== digest) {
      throw new CircuitryError(`downloading ${r.file} of model '${ctx.id}': sha256 ${digest} does not match the hub's ${r.lfsSha256} (corrupted download)`);
    }
    const blobName = r.etag && /^[0-9a-f]{40}$|^[0-9a-f]{64}$/.test(r.etag) ? r.etag : digest;
    const blob = join(blobs, blobName);
    renameSync(tmp, blob);
    linkIntoSnapshot(blob, join(snapshot, r.file));
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** snapshot/file -> ../../blobs/x as a relative symlink (a copy where symlinks are not allowed). */
function linkIntoSnapshot(blob: string, target: string): void {
  mkdirSync(dirname(target), { recursive: true });
  const tmp = `${target}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    symlinkSync(relative(dirname(target), blob), tmp);
  } catch {
    copyFileSync(blob, tmp);
  }
  renameSync(tmp, target);
}

/** Writes refs/{revision} (temp file, then rename). */
function writeRef(repoDir: string, revision: string, commit: string): void {
  const ref = join(repoDir, 'refs', revision);
  mkdirSync(dirname(ref), { recursive: true });
  const tmp = `${ref}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, commit);
  renameSync(tmp, ref);
}

async function download(id: string, revision: string, repoDir: string, env: Env, log?: (m: string) => void): Promise<string> {
  const ctx: HubContext = {
    id,
    endpoint: (env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, ''),
    token: env.HF_TOKEN || undefined,
    log,
  };
  const config = await transfer(CONFIG_FILE, () => hubGet(ctx, revision, CONFIG_FILE));
  if (!config.res.ok) throw httpError(ctx, config, revision);
  // pin every later file to the commit config.json came from; mirrors without the header
  // get a snapshot named after the revision
  const commit = config.commit ?? revision;
  if (!/^[\w.-]+$/.test(commit)) throw new CircuitryError(`${config.url}: unexpected x-repo-commit header ${JSON.stringify(commit)}`);
  const snapshot = join(repoDir, 'snapshots', commit);
  await transfer(CONFIG_FILE, () => store(ctx, config, repoDir, snapshot));

  const fetchIfAbsent = (file: string, optional: boolean): Promise<boolean> =>
    transfer(file, async () => {
      if (existsSync(join(snapshot, file))) return true;
      const r = await hubGet(ctx, commit, file);
      if (isMissing(r) && optional) {
        await r.res.body?.cancel();
        return false;
      }
      if (!r.res.ok) throw httpError(ctx, r, revision);
      await store(ctx, r, repoDir, snapshot);
      return true;
    });

  if (!(await fetchIfAbsent(WEIGHTS_FILE, true))) {
    if (!(await fetchIfAbsent(INDEX_FILE, true))) {
      throw new CircuitryError(
        `model '${id}' has no ${WEIGHTS_FILE} or ${INDEX_FILE} on the HuggingFace hub (revision '${revision}'): circuitry reads safetensors only. ` +
          `Convert it with transformers (save_pretrained(dir, safe_serialization=True)) and pass the folder`,
      );
    }
    const indexPath = join(snapshot, INDEX_FILE);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(indexPath, 'utf8'));
    } catch (e) {
      throw new CircuitryError(`${indexPath}: invalid JSON (${(e as Error).message})`);
    }
    for (const shard of shardsOfIndex(raw, indexPath).shards) await fetchIfAbsent(shard, false);
  }
  // tokenizer_config.json completes the tokenizer (special tokens, BOS) only beside a tokenizer.json
  if (await fetchIfAbsent(TOKENIZER_FILE, true)) await fetchIfAbsent(TOKENIZER_CONFIG_FILE, true);
  if (!COMMIT.test(revision)) writeRef(repoDir, revision, commit);
  return snapshot;
}
