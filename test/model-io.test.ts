import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { hashFiles, readCheckpointFolder } from '../src/model/checkpoint.js';
import { hubCacheDir, repoCacheDir, resolveModelPath } from '../src/model/hub.js';
import { readSafetensors, type HostTensor } from '../src/model/safetensors.js';
import { tokenizerForFolder } from '../src/model/tokenizer.js';
import { CircuitryError } from '../src/errors.js';
import { FIXTURE_MODEL, tempDir, writeFileJson, writeSharded } from './helpers/io-files.js';
import { closedPort, startFakeHub, type FakeHub, type FakeRepo } from './helpers/io-hub-server.js';
import { handTokenizerJson } from './helpers/io-tokenizers.js';

async function rejection(p: Promise<unknown>): Promise<CircuitryError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(CircuitryError);
    return e as CircuitryError;
  }
  throw new Error('expected a CircuitryError, the promise resolved');
}

function errorOf(fn: () => unknown): CircuitryError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CircuitryError);
    return e as CircuitryError;
  }
  throw new Error('expected a CircuitryError, nothing was thrown');
}

function expectSameTensors(a: ReadonlyMap<string, HostTensor>, b: ReadonlyMap<string, HostTensor>): void {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  for (const [name, t] of a) {
    expect(b.get(name)!.shape).toEqual(t.shape);
    expect(Buffer.from(b.get(name)!.data.buffer).equals(Buffer.from(t.data.buffer))).toBe(true);
  }
}

const fixtureConfig = readFileSync(join(FIXTURE_MODEL, 'config.json'));
const fixtureWeights = readFileSync(join(FIXTURE_MODEL, 'model.safetensors'));
let fixtureTensors: Map<string, HostTensor>;
beforeAll(() => {
  fixtureTensors = readSafetensors(join(FIXTURE_MODEL, 'model.safetensors'));
});

/** A folder with the fixture's config.json and (unless told otherwise) nothing else. */
function folderWithConfig(): string {
  const dir = tempDir();
  copyFileSync(join(FIXTURE_MODEL, 'config.json'), join(dir, 'config.json'));
  return dir;
}

describe('readCheckpointFolder', () => {
  it('reads the fixture model: config, all tensors, the files it used', () => {
    const ck = readCheckpointFolder(FIXTURE_MODEL);
    expect(ck.dir).toBe(FIXTURE_MODEL);
    expect(ck.config).toMatchObject({ nLayers: 2, nHeads: 4, dModel: 64, dMlp: 256, dVocab: 100, nCtx: 32 });
    expect((ck.configRaw as { model_type: string }).model_type).toBe('gpt2');
    expect(ck.tensors.size).toBe(28);
    expect(ck.tensors.get('transformer.wte.weight')!.shape).toEqual([100, 64]);
    expect(ck.files).toEqual([join(FIXTURE_MODEL, 'config.json'), join(FIXTURE_MODEL, 'model.safetensors')]);
    expect(ck.tokenizerPath).toBeUndefined();
    expect('tokenizerPath' in ck).toBe(false);
  });

  it('reads sharded weights through model.safetensors.index.json', () => {
    const dir = folderWithConfig();
    const shards = writeSharded(dir, fixtureTensors, 3);
    const ck = readCheckpointFolder(dir);
    expectSameTensors(fixtureTensors, ck.tensors);
    expect(ck.files).toEqual([join(dir, 'config.json'), join(dir, 'model.safetensors.index.json'), ...shards.map((s) => join(dir, s))]);
  });

  it('finds tokenizer.json', () => {
    const dir = folderWithConfig();
    copyFileSync(join(FIXTURE_MODEL, 'model.safetensors'), join(dir, 'model.safetensors'));
    writeFileJson(join(dir, 'tokenizer.json'), handTokenizerJson());
    expect(readCheckpointFolder(dir).tokenizerPath).toBe(join(dir, 'tokenizer.json'));
  });

  it('names a missing shard', () => {
    const dir = folderWithConfig();
    const shards = writeSharded(dir, fixtureTensors, 2);
    rmSync(join(dir, shards[1]));
    expect(errorOf(() => readCheckpointFolder(dir)).message).toBe(`${join(dir, 'model.safetensors.index.json')}: shard '${shards[1]}' is missing from ${dir}`);
  });

  it('names a tensor the index places in a shard that lacks it', () => {
    const dir = folderWithConfig();
    const shards = writeSharded(dir, fixtureTensors, 2);
    const indexPath = join(dir, 'model.safetensors.index.json');
    const index = JSON.parse(readFileSync(indexPath, 'utf8'));
    index.weight_map['transformer.extra.weight'] = shards[0];
    writeFileJson(indexPath, index);
    expect(errorOf(() => readCheckpointFolder(dir)).message).toBe(
      `${indexPath}: tensor 'transformer.extra.weight' should be in shard '${shards[0]}', but that shard does not contain it`,
    );
  });

  it('refuses shard paths that leave the folder', () => {
    const dir = folderWithConfig();
    const indexPath = join(dir, 'model.safetensors.index.json');
    writeFileJson(indexPath, { weight_map: { 'transformer.wte.weight': '../elsewhere.safetensors' } });
    expect(errorOf(() => readCheckpointFolder(dir)).message).toBe(
      `${indexPath}: weight_map['transformer.wte.weight'] must be a shard file name inside the model folder, got "../elsewhere.safetensors"`,
    );
    writeFileJson(indexPath, { metadata: {} });
    expect(errorOf(() => readCheckpointFolder(dir)).message).toBe(`${indexPath}: expected a 'weight_map' object of tensor name -> shard file`);
  });

  it('names the folder and config.json when the config is missing', () => {
    const dir = tempDir();
    copyFileSync(join(FIXTURE_MODEL, 'model.safetensors'), join(dir, 'model.safetensors'));
    expect(errorOf(() => readCheckpointFolder(dir)).message).toBe(
      `${dir}: no config.json in the model folder (expected a HuggingFace folder with config.json and model.safetensors)`,
    );
  });

  it('names config.json when it is not JSON, and passes the file name to the config reader', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'config.json'), '{"n_layer": 2,');
    expect(errorOf(() => readCheckpointFolder(dir)).message).toMatch(new RegExp(`^${join(dir, 'config.json')}: invalid JSON \\(.+\\)$`));
    writeFileJson(join(dir, 'config.json'), { model_type: 'bert' });
    expect(errorOf(() => readCheckpointFolder(dir)).message).toMatch(new RegExp(`^${join(dir, 'config.json')}: unsupported architecture \\(model_type "bert"\\); supported families: gpt2 .*llama`));
  });

  it('refuses pickle checkpoints and says how to convert', () => {
    const dir = folderWithConfig();
    writeFileSync(join(dir, 'pytorch_model.bin'), 'not really a pickle');
    expect(errorOf(() => readCheckpointFolder(dir)).message).toBe(
      `${dir}: has pytorch_model.bin but no model.safetensors: circuitry reads safetensors only (it never loads pickle files). ` +
        `Convert once with Python: from transformers import AutoModelForCausalLM; AutoModelForCausalLM.from_pretrained('${dir}').save_pretrained('${dir}', safe_serialization=True)`,
    );
  });

  it('names a folder without weights, a missing folder and a file', () => {
    const dir = folderWithConfig();
    expect(errorOf(() => readCheckpointFolder(dir)).message).toBe(
      `${dir}: no model.safetensors or model.safetensors.index.json in the model folder (expected a HuggingFace folder with config.json and safetensors weights)`,
    );
    expect(errorOf(() => readCheckpointFolder(join(dir, 'nope'))).message).toBe(`${join(dir, 'nope')}: model folder does not exist`);
    expect(errorOf(() => readCheckpointFolder(join(dir, 'config.json'))).message).toBe(
      `${join(dir, 'config.json')}: expected a model folder (with config.json and model.safetensors), got a file`,
    );
  });
});

describe('hashFiles', () => {
  it('is sha256 over name, size and bytes of each file, independent of the folder', () => {
    const a = tempDir();
    const b = tempDir();
    for (const d of [a, b]) {
      writeFileSync(join(d, 'config.json'), '{"x": 1}');
      writeFileSync(join(d, 'model.safetensors'), Buffer.alloc(3 << 20, 7)); // > one 1 MiB chunk
    }
    const files = (d: string): string[] => [join(d, 'config.json'), join(d, 'model.safetensors')];
    const expected = createHash('sha256')
      .update('config.json\u00008\u0000{"x": 1}')
      .update(`model.safetensors\u0000${3 << 20}\u0000`)
      .update(Buffer.alloc(3 << 20, 7))
      .digest('hex');
    expect(hashFiles(files(a))).toBe(expected);
    expect(hashFiles(files(b))).toBe(expected);
    expect(hashFiles([...files(a)].reverse())).not.toBe(expected);
    writeFileSync(join(b, 'model.safetensors'), Buffer.concat([Buffer.alloc((3 << 20) - 1, 7), Buffer.from([8])]));
    expect(hashFiles(files(b))).not.toBe(expected);
  });

  it('hashes the files a checkpoint was read from, and names a missing file', () => {
    const ck = readCheckpointFolder(FIXTURE_MODEL);
    expect(hashFiles(ck.files)).toMatch(/^[0-9a-f]{64}$/);
    const missing = join(tempDir(), 'gone.safetensors');
    expect(errorOf(() => hashFiles([missing])).message).toBe(`${missing}: cannot open the file to hash it`);
  });
});

const COMMIT_A = 'a'.repeat(8) + '0123456789abcdef0123456789abcdef';
const COMMIT_B = 'b'.repeat(8) + '0123456789abcdef0123456789abcdef';

function singleRepo(extra: Record<string, Buffer> = {}): FakeRepo {
  return { commit: COMMIT_A, files: { 'config.json': fixtureConfig, 'model.safetensors': fixtureWeights, ...extra } };
}

function shardedRepo(): FakeRepo {
  const dir = tempDir();
  const shards = writeSharded(dir, fixtureTensors, 2);
  const files: Record<string, Buffer> = { 'config.json': fixtureConfig };
  for (const f of ['model.safetensors.index.json', ...shards]) files[f] = readFileSync(join(dir, f));
  return { commit: COMMIT_B, files };
}

const servers: FakeHub[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});
async function hub(repos: Record<string, FakeRepo>, opts?: Parameters<typeof startFakeHub>[1]): Promise<FakeHub> {
  const s = await startFakeHub(repos, opts);
  servers.push(s);
  return s;
}

describe('resolveModelPath: local folders and names', () => {
  it('returns an existing folder as local, absolute', async () => {
    const r = await resolveModelPath(FIXTURE_MODEL, { env: {} });
    expect(r).toEqual({ dir: resolve(FIXTURE_MODEL), kind: 'local' });
  });

  it('names a path that does not exist, a file, and a name that is no hub id', async () => {
    expect((await rejection(resolveModelPath('./no/such/model', { env: {} }))).message).toBe("model folder './no/such/model' does not exist");
    expect((await rejection(resolveModelPath('/abs/missing', { env: {} }))).message).toBe("model folder '/abs/missing' does not exist");
    expect((await rejection(resolveModelPath('a/b/c', { env: {} }))).message).toBe("model folder 'a/b/c' does not exist");
    const file = join(FIXTURE_MODEL, 'config.json');
    expect((await rejection(resolveModelPath(file, { env: {} }))).message).toBe(
      `model '${file}': ${file} is a file; expected a model folder (with config.json and model.safetensors)`,
    );
    expect((await rejection(resolveModelPath('gpt 2!', { env: {} }))).message).toBe(
      "model 'gpt 2!' is neither an existing folder nor a HuggingFace model id (expected 'name' or 'org/name')",
    );
  });

  it('places the cache under HF_HUB_CACHE, else HF_HOME/hub, else XDG_CACHE_HOME', () => {
    expect(hubCacheDir({ HF_HUB_CACHE: '/c', HF_HOME: '/h' })).toBe('/c');
    expect(hubCacheDir({ HF_HOME: '/h' })).toBe('/h/hub');
    expect(hubCacheDir({ XDG_CACHE_HOME: '/x' })).toBe('/x/huggingface/hub');
    expect(repoCacheDir('openai-community/gpt2', { HF_HOME: '/h' })).toBe('/h/hub/models--openai-community--gpt2');
    expect(repoCacheDir('gpt2', { HF_HOME: '/h' })).toBe('/h/hub/models--gpt2');
  });
});

describe('resolveModelPath: the HuggingFace cache and downloads (loopback server)', () => {
  it('downloads config, LFS weights and tokenizer into the HF cache layout', async () => {
    const tok = Buffer.from(JSON.stringify(handTokenizerJson()));
    const tokConfig = Buffer.from(JSON.stringify({ clean_up_tokenization_spaces: false }));
    const server = await hub({ 'circuitry-test/tiny': singleRepo({ 'tokenizer.json': tok, 'tokenizer_config.json': tokConfig }) });
    const home = tempDir();
    const logs: string[] = [];
    const r = await resolveModelPath('circuitry-test/tiny', { env: { HF_HOME: home, HF_ENDPOINT: server.endpoint }, log: (m) => logs.push(m) });

    const repoDir = join(home, 'hub', 'models--circuitry-test--tiny');
    expect(r).toEqual({ dir: join(repoDir, 'snapshots', COMMIT_A), kind: 'hub' });
    expect(readFileSync(join(repoDir, 'refs', 'main'), 'utf8')).toBe(COMMIT_A);
    // snapshot entries are relative symlinks into blobs/, LFS blobs named by sha256
    const sha = createHash('sha256').update(fixtureWeights).digest('hex');
    expect(lstatSync(join(r.dir, 'model.safetensors')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(r.dir, 'model.safetensors'))).toBe(join('..', '..', 'blobs', sha));
    expect(readdirSync(join(repoDir, 'blobs')).filter((f) => f.includes('incomplete'))).toEqual([]);
    expect(readdirSync(join(repoDir, 'blobs'))).toHaveLength(4);

    const ck = readCheckpointFolder(r.dir);
    expectSameTensors(fixtureTensors, ck.tensors);
    expect(ck.tokenizerPath).toBe(join(r.dir, 'tokenizer.json'));
    expect(readFileSync(ck.tokenizerPath!).equals(tok)).toBe(true);
    // (the hand tokenizer has 267 ids, more than the fixture's 100, so read it with room)
    expect(tokenizerForFolder(r.dir, 267).encode(' hello')).toEqual([220, 262]);
    // through @huggingface/hub: the revision's commit first, then everything pinned to it
    const paths = server.requests.map((q) => q.path);
    expect(paths[0]).toBe('/api/models/circuitry-test/tiny/revision/main');
    expect(paths.slice(1).filter((p) => !p.includes(`/${COMMIT_A}`) && p !== `/cdn/${sha}`)).toEqual([]);
    expect(paths).toContain(`/api/models/circuitry-test/tiny/paths-info/${COMMIT_A}`);
    expect([...new Set(paths.filter((p) => p.includes('/resolve/')).map((p) => p.split('/').at(-1)))]).toEqual(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    expect(readFileSync(join(r.dir, 'tokenizer_config.json')).equals(tokConfig)).toBe(true);
    expect(logs).toEqual([
      `downloading circuitry-test/tiny/config.json (${(fixtureConfig.length / 1e3).toFixed(0)} kB)`,
      `downloading circuitry-test/tiny/model.safetensors (${(fixtureWeights.length / 1e3).toFixed(0)} kB)`,
      `downloading circuitry-test/tiny/tokenizer.json (${(tok.length / 1e3).toFixed(0)} kB)`,
      `downloading circuitry-test/tiny/tokenizer_config.json (0 kB)`,
    ]);
  });

  it('serves the second call from the cache without asking the server, even offline', async () => {
    const server = await hub({ tiny: singleRepo() });
    const home = tempDir();
    const env = { HF_HOME: home, HF_ENDPOINT: server.endpoint };
    const first = await resolveModelPath('tiny', { env });
    const n = server.requests.length;
    // paths-info said there is no tokenizer.json: it is not asked for
    expect(server.requests.filter((q) => q.path.endsWith('/tokenizer.json'))).toEqual([]);
    expect(existsSync(join(first.dir, 'tokenizer.json'))).toBe(false);
    expect(await resolveModelPath('tiny', { env })).toEqual(first);
    expect(await resolveModelPath('tiny', { env: { ...env, HF_HUB_OFFLINE: '1' } })).toEqual(first);
    expect(server.requests.length).toBe(n);
  });

  it('honours HF_HUB_CACHE over HF_HOME', async () => {
    const server = await hub({ tiny: singleRepo() });
    const cache = tempDir();
    const r = await resolveModelPath('tiny', { env: { HF_HUB_CACHE: cache, HF_HOME: '/nonexistent', HF_ENDPOINT: server.endpoint } });
    expect(r.dir).toBe(join(cache, 'models--tiny', 'snapshots', COMMIT_A));
  });

  it('downloads a sharded model: index, then every shard', async () => {
    const repo = shardedRepo();
    const server = await hub({ 'org/sharded': repo });
    const home = tempDir();
    const r = await resolveModelPath('org/sharded', { env: { HF_HOME: home, HF_ENDPOINT: server.endpoint } });
    expect(r.dir).toBe(join(home, 'hub', 'models--org--sharded', 'snapshots', COMMIT_B));
    const ck = readCheckpointFolder(r.dir);
    expectSameTensors(fixtureTensors, ck.tensors);
    const files = server.requests.map((q) => q.path).filter((p) => p.includes('/resolve/'));
    expect(files.every((p) => p.startsWith(`/org/sharded/resolve/${COMMIT_B}/`))).toBe(true);
    expect([...new Set(files.map((p) => p.split('/').at(-1)))]).toEqual([
      'config.json',
      'model.safetensors.index.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
    ]);
    const n = server.requests.length;
    await resolveModelPath('org/sharded', { env: { HF_HOME: home, HF_ENDPOINT: server.endpoint } });
    expect(server.requests.length).toBe(n);
  });

  it('pins a revision given as a commit hash', async () => {
    const server = await hub({ tiny: singleRepo() });
    const home = tempDir();
    const r = await resolveModelPath('tiny', { revision: COMMIT_A, env: { HF_HOME: home, HF_ENDPOINT: server.endpoint } });
    expect(r.dir).toBe(join(home, 'hub', 'models--tiny', 'snapshots', COMMIT_A));
    // a commit needs no lookup: the first request is already pinned to it
    expect(server.requests[0].path).toBe(`/api/models/tiny/paths-info/${COMMIT_A}`);
    expect(existsSync(join(home, 'hub', 'models--tiny', 'refs'))).toBe(false);
    expect((await rejection(resolveModelPath('tiny', { revision: 'v9', env: { HF_HOME: home, HF_ENDPOINT: server.endpoint } }))).message).toBe(
      `model 'tiny' has no revision 'v9' on the HuggingFace hub (${server.endpoint}/api/models/tiny/revision/v9 returned HTTP 404)`,
    );
  });

  it('uses a cache written by other tools: no refs, one snapshot of plain files', async () => {
    const home = tempDir();
    const snap = join(home, 'hub', 'models--someone--tiny', 'snapshots', COMMIT_A);
    mkdirSync(snap, { recursive: true });
    copyFileSync(join(FIXTURE_MODEL, 'config.json'), join(snap, 'config.json'));
    copyFileSync(join(FIXTURE_MODEL, 'model.safetensors'), join(snap, 'model.safetensors'));
    const port = await closedPort();
    expect(await resolveModelPath('someone/tiny', { env: { HF_HOME: home, HF_ENDPOINT: `http://127.0.0.1:${port}` } })).toEqual({ dir: snap, kind: 'hub' });
  });

  it('explains an uncached model when HF_HUB_OFFLINE is set, without any request', async () => {
    const server = await hub({ gpt2: singleRepo() });
    const home = tempDir();
    const err = await rejection(resolveModelPath('gpt2', { env: { HF_HOME: home, HF_ENDPOINT: server.endpoint, HF_HUB_OFFLINE: '1' } }));
    expect(err.message).toBe(
      `model 'gpt2' is not in the HuggingFace cache (${join(home, 'hub', 'models--gpt2')}) and could not be downloaded (HF_HUB_OFFLINE is set); ` +
        "download it with `huggingface-cli download gpt2 --include '*.json' '*.safetensors'` or pass a local folder",
    );
    expect(server.requests).toEqual([]);
  });

  it('explains an uncached model when the hub cannot be reached', async () => {
    const home = tempDir();
    const port = await closedPort();
    const err = await rejection(resolveModelPath('gpt2', { env: { HF_HOME: home, HF_ENDPOINT: `http://127.0.0.1:${port}` } }));
    expect(err.message).toBe(
      `model 'gpt2' is not in the HuggingFace cache (${join(home, 'hub', 'models--gpt2')}) and could not be downloaded (config.json: connect ECONNREFUSED 127.0.0.1:${port}); ` +
        "download it with `huggingface-cli download gpt2 --include '*.json' '*.safetensors'` or pass a local folder",
    );
  });

  it('names an unknown id (404, or 401 RepoNotFound as the real hub answers) and caches nothing', async () => {
    const home = tempDir();
    for (const unauthorizedMissing of [false, true]) {
      const server = await hub({ tiny: singleRepo() }, { unauthorizedMissing });
      const err = await rejection(resolveModelPath('nobody/nothing', { env: { HF_HOME: home, HF_ENDPOINT: server.endpoint } }));
      expect(err.message).toBe(
        `model 'nobody/nothing' was not found on the HuggingFace hub (${server.endpoint}/api/models/nobody/nothing/revision/main returned HTTP ${unauthorizedMissing ? 401 : 404}); check the id, or set HF_TOKEN if it is private`,
      );
    }
    expect(existsSync(join(home, 'hub', 'models--nobody--nothing', 'snapshots'))).toBe(false);
  });

  it('refuses a repository with pickle weights only', async () => {
    const server = await hub({ old: { commit: COMMIT_A, files: { 'config.json': fixtureConfig, 'pytorch_model.bin': Buffer.from('x') } } });
    const err = await rejection(resolveModelPath('old', { env: { HF_HOME: tempDir(), HF_ENDPOINT: server.endpoint } }));
    expect(err.message).toBe(
      "model 'old' has no model.safetensors or model.safetensors.index.json on the HuggingFace hub (revision 'main'): circuitry reads safetensors only. " +
        'Convert it with transformers (save_pretrained(dir, safe_serialization=True)) and pass the folder',
    );
  });

  it('leaves nothing half-written when a download is cut, and resumes on the next call', async () => {
    const home = tempDir();
    const cut = await hub({ tiny: { ...singleRepo(), truncate: 'model.safetensors' } });
    const err = await rejection(resolveModelPath('tiny', { env: { HF_HOME: home, HF_ENDPOINT: cut.endpoint } }));
    const repoDir = join(home, 'hub', 'models--tiny');
    expect(err.message).toMatch(new RegExp(`^model 'tiny' is not in the HuggingFace cache \\(${repoDir}\\) and could not be downloaded \\(model.safetensors: .+\\); download it with`));
    expect(readdirSync(join(repoDir, 'blobs'))).toHaveLength(1); // config.json only, no temp file
    expect(readdirSync(join(repoDir, 'snapshots', COMMIT_A))).toEqual(['config.json']);
    expect(existsSync(join(repoDir, 'refs'))).toBe(false);

    // offline, the partial snapshot is named in the message
    const offline = await rejection(resolveModelPath('tiny', { env: { HF_HOME: home, HF_HUB_OFFLINE: 'true' } }));
    expect(offline.message).toContain(`(HF_HUB_OFFLINE is set); the cached snapshot ${join(repoDir, 'snapshots', COMMIT_A)} lacks model.safetensors; download it with`);

    const good = await hub({ tiny: singleRepo() });
    const r = await resolveModelPath('tiny', { env: { HF_HOME: home, HF_ENDPOINT: good.endpoint } });
    expectSameTensors(fixtureTensors, readCheckpointFolder(r.dir).tensors);
  });

  it('rejects an LFS blob whose sha256 does not match the etag', async () => {
    const server = await hub({ tiny: { ...singleRepo(), wrongEtag: 'model.safetensors' } });
    const home = tempDir();
    const err = await rejection(resolveModelPath('tiny', { env: { HF_HOME: home, HF_ENDPOINT: server.endpoint } }));
    const sha = createHash('sha256').update(fixtureWeights).digest('hex');
    expect(err.message).toBe(`downloading model.safetensors of model 'tiny': sha256 ${sha} does not match the hub's ${'0'.repeat(64)} (corrupted download)`);
    expect(readdirSync(join(home, 'hub', 'models--tiny', 'blobs'))).toHaveLength(1);
  });

  it('sends HF_TOKEN to the hub but not to the CDN it redirects to', async () => {
    const cdn = await hub({ tiny: singleRepo() });
    const server = await hub({ tiny: singleRepo() }, { cdnEndpoint: cdn.endpoint });
    await resolveModelPath('tiny', { env: { HF_HOME: tempDir(), HF_ENDPOINT: server.endpoint, HF_TOKEN: 'hf_secret' } });
    expect(server.requests.length).toBeGreaterThan(3);
    expect(server.requests.filter((q) => q.authorization !== 'Bearer hf_secret')).toEqual([]);
    expect(cdn.requests.length).toBeGreaterThan(0);
    expect(cdn.requests.filter((q) => !/^\/cdn\/[0-9a-f]{64}$/.test(q.path) || q.authorization !== undefined)).toEqual([]);
  });

  it('reads HF_HOME and HF_ENDPOINT from process.env by default', async () => {
    const server = await hub({ tiny: singleRepo() });
    const home = tempDir();
    const saved = { HF_HOME: process.env.HF_HOME, HF_ENDPOINT: process.env.HF_ENDPOINT, HF_HUB_CACHE: process.env.HF_HUB_CACHE };
    process.env.HF_HOME = home;
    process.env.HF_ENDPOINT = server.endpoint;
    delete process.env.HF_HUB_CACHE;
    try {
      expect((await resolveModelPath('tiny')).dir).toBe(join(home, 'hub', 'models--tiny', 'snapshots', COMMIT_A));
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});
