import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { HubApiError, downloadFileToCacheDir, modelInfo, pathsInfo, type PathInfo } from '@huggingface/hub';
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
 *
 * Downloads go through @huggingface/hub (model info, paths-info, downloadFileToCacheDir, which
 * also reads Xet-stored files); this module adds the commit pinning, the checks (size, sha256),
 * the clean-up of a failed download and messages that name the model, the file and the status.
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

/** One answer of the hub (or the CDN), as the fetch below saw it. */
interface HubAnswer {
  readonly url: string;
  readonly status: number;
  /** x-error-code: RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo */
  readonly errorCode?: string;
}

interface HubContext {
  readonly id: string;
  readonly revision: string;
  readonly hubUrl: string;
  readonly accessToken?: string;
  readonly fetch: typeof fetch;
  readonly answers: HubAnswer[];
  readonly log?: (message: string) => void;
}

/**
 * The fetch @huggingface/hub is given: it follows redirects itself so that the token goes to
 * the hub's origin only (never to the CDN a large file redirects to), and it records each
 * answer's status and x-error-code, which the library's errors do not keep.
 */
function hubFetch(hubUrl: string, answers: HubAnswer[]): typeof fetch {
  const origin = new URL(hubUrl).origin;
  return async (input, init = {}) => {
    let url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    for (let hop = 0; hop < 10; hop++) {
      const headers = new Headers(init.headers);
      if (new URL(url).origin !== origin) headers.delete('authorization');
      const res = await fetch(url, { ...init, headers, redirect: 'manual' });
      answers.push({ url, status: res.status, errorCode: res.headers.get('x-error-code') ?? undefined });
      const location = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !location) return res;
      await res.body?.cancel();
      url = new URL(location, url).href;
    }
    throw new CircuitryError(`${url}: too many redirects`);
  };
}

/** The hub's last failed answer as a CircuitryError naming the model, the file and the status. */
function httpError(ctx: HubContext, file: string | undefined): CircuitryError {
  const r = [...ctx.answers].reverse().find((a) => a.status >= 400) ?? ctx.answers.at(-1);
  if (!r) return new CircuitryError(`model '${ctx.id}': the HuggingFace hub gave no answer`);
  const status = `${r.url.split('?')[0]} returned HTTP ${r.status}`;
  if (r.errorCode === 'RepoNotFound' || (file === undefined && r.status === 404 && !r.errorCode)) {
    return new CircuitryError(`model '${ctx.id}' was not found on the HuggingFace hub (${status}); check the id, or set HF_TOKEN if it is private`);
  }
  if (r.errorCode === 'RevisionNotFound') return new CircuitryError(`model '${ctx.id}' has no revision '${ctx.revision}' on the HuggingFace hub (${status})`);
  if (file !== undefined && (r.errorCode === 'EntryNotFound' || r.status === 404)) {
    return new CircuitryError(`model '${ctx.id}' has no ${file} on the HuggingFace hub (${status})`);
  }
  if (r.errorCode === 'GatedRepo' || r.status === 401 || r.status === 403) {
    return new CircuitryError(`model '${ctx.id}' needs authorization (${status}): it may be gated or private; accept its terms on the hub and set HF_TOKEN`);
  }
  return new CircuitryError(`downloading ${file ?? 'the file list'} of model '${ctx.id}' failed (${status})`);
}

/** Runs one library call; a hub answer becomes httpError, anything else a TransferError. */
async function hubCall<T>(ctx: HubContext, file: string | undefined, fn: () => Promise<T>): Promise<T> {
  const before = ctx.answers.length;
  try {
    return await fn();
  } catch (e) {
    if (e instanceof CircuitryError) throw e;
    if (e instanceof HubApiError || ctx.answers.slice(before).some((a) => a.status >= 400)) throw httpError(ctx, file);
    throw new TransferError(file ?? CONFIG_FILE, networkReason(e));
  }
}

function formatBytes(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(0)} MB` : `${(n / 1e3).toFixed(0)} kB`;
}

/** What paths-info says of the files asked for (absent files are left out). */
async function filesAt(ctx: HubContext, commit: string, paths: readonly string[]): Promise<Map<string, PathInfo>> {
  const infos = await hubCall(ctx, undefined, () =>
    pathsInfo({ repo: { type: 'model', name: ctx.id }, paths: [...paths], revision: commit, expand: true, hubUrl: ctx.hubUrl, accessToken: ctx.accessToken, fetch: ctx.fetch }),
  );
  return new Map(infos.filter((i) => i.type === 'file').map((i) => [i.path, i]));
}

/**
 * One file into the cache by @huggingface/hub (blobs/{etag}, snapshots/{commit}/{file} a
 * relative symlink), then checked: its size, and an LFS file's sha256. A failed or bad download
 * leaves neither a blob, nor a temporary file, nor a snapshot entry behind.
 */
async function fetchFile(ctx: HubContext, repoDir: string, commit: string, file: string, info: PathInfo): Promise<void> {
  ctx.log?.(`downloading ${ctx.id}/${file} (${formatBytes(info.size)})`);
  // the blob name the library gives it
  const etag = info.lfs?.oid ?? info.xetHash ?? info.oid;
  if (!etag) throw new CircuitryError(`model '${ctx.id}': the hub sent no oid for ${file}`);
  const blob = join(repoDir, 'blobs', etag);
  const pointer = join(repoDir, 'snapshots', commit, file);
  const discard = () => [blob, `${blob}.incomplete`, pointer].forEach((p) => rmSync(p, { force: true }));
  // the library announces each download on console.debug, which is stdout: our stdout is the command's output
  const debug = console.debug;
  console.debug = () => undefined;
  try {
    await hubCall(ctx, file, () =>
      downloadFileToCacheDir({ repo: { type: 'model', name: ctx.id }, path: file, revision: commit, cacheDir: dirname(repoDir), hubUrl: ctx.hubUrl, accessToken: ctx.accessToken, fetch: ctx.fetch }),
    );
    const bytes = statSync(blob).size;
    if (bytes !== info.size) throw new TransferError(file, `got ${bytes} bytes, expected ${info.size} (connection cut?)`);
    if (info.lfs) {
      const digest = await sha256File(blob);
      if (digest !== info.lfs.oid) throw new CircuitryError(`downloading ${file} of model '${ctx.id}': sha256 ${digest} does not match the hub's ${info.lfs.oid} (corrupted download)`);
    }
  } catch (e) {
    discard();
    throw e;
  } finally {
    console.debug = debug;
  }
}

async function sha256File(path: string): Promise<string> {
  const sha = createHash('sha256');
  for await (const chunk of createReadStream(path)) sha.update(chunk as Buffer);
  return sha.digest('hex');
}

/** Writes refs/{revision} (temp file, then rename). */
function writeRef(repoDir: string, revision: string, commit: string): void {
  const ref = join(repoDir, 'refs', revision);
  mkdirSync(dirname(ref), { recursive: true });
  const tmp = `${ref}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, commit);
  renameSync(tmp, ref);
}

/**
 * Downloads through @huggingface/hub: the revision's commit (model info), which of the files we
 * read exist there (paths-info), then each file pinned to that commit, so that one snapshot
 * folder holds one commit's files (the library alone would file each under its last commit).
 */
async function download(id: string, revision: string, repoDir: string, env: Env, log?: (m: string) => void): Promise<string> {
  const hubUrl = (env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '');
  const answers: HubAnswer[] = [];
  const ctx: HubContext = { id, revision, hubUrl, accessToken: env.HF_TOKEN || undefined, fetch: hubFetch(hubUrl, answers), answers, log };
  const commit = COMMIT.test(revision)
    ? revision
    : (await hubCall(ctx, undefined, () => modelInfo({ name: id, revision, hubUrl, accessToken: ctx.accessToken, fetch: ctx.fetch, additionalFields: ['sha'] }))).sha;
  if (typeof commit !== 'string' || !/^[\w.-]+$/.test(commit)) throw new CircuitryError(`model '${id}': the hub named an unexpected commit ${JSON.stringify(commit)} for revision '${revision}'`);
  const snapshot = join(repoDir, 'snapshots', commit);
  const present = await filesAt(ctx, commit, [CONFIG_FILE, WEIGHTS_FILE, INDEX_FILE, TOKENIZER_FILE, TOKENIZER_CONFIG_FILE]);
  const get = async (file: string, info: PathInfo | undefined): Promise<void> => {
    if (!info) throw new CircuitryError(`model '${id}' has no ${file} on the HuggingFace hub (revision '${revision}')`);
    if (!existsSync(join(snapshot, file))) await fetchFile(ctx, repoDir, commit, file, info);
  };
  await get(CONFIG_FILE, present.get(CONFIG_FILE));
  if (present.has(WEIGHTS_FILE)) await get(WEIGHTS_FILE, present.get(WEIGHTS_FILE));
  else if (present.has(INDEX_FILE)) {
    await get(INDEX_FILE, present.get(INDEX_FILE));
    const indexPath = join(snapshot, INDEX_FILE);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(indexPath, 'utf8'));
    } catch (e) {
      throw new CircuitryError(`${indexPath}: invalid JSON (${(e as Error).message})`);
    }
    const { shards } = shardsOfIndex(raw, indexPath);
    const shardInfo = await filesAt(ctx, commit, shards);
    for (const shard of shards) await get(shard, shardInfo.get(shard));
  } else {
    throw new CircuitryError(
      `model '${id}' has no ${WEIGHTS_FILE} or ${INDEX_FILE} on the HuggingFace hub (revision '${revision}'): circuitry reads safetensors only. ` +
        `Convert it with transformers (save_pretrained(dir, safe_serialization=True)) and pass the folder`,
    );
  }
  // tokenizer_config.json completes the tokenizer (special tokens, BOS) only beside a tokenizer.json
  if (present.has(TOKENIZER_FILE)) {
    await get(TOKENIZER_FILE, present.get(TOKENIZER_FILE));
    if (present.has(TOKENIZER_CONFIG_FILE)) await get(TOKENIZER_CONFIG_FILE, present.get(TOKENIZER_CONFIG_FILE));
  }
  if (!COMMIT.test(revision)) writeRef(repoDir, revision, commit);
  return snapshot;
}
