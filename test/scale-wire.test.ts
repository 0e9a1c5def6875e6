import { describe, it, expect } from 'vitest';
import type { ModelRef, ShardSpec, WorkerReply, WorkerTask } from '../src/scale/protocol.js';
import { decodeReply, decodeTask, encodeReply, encodeTask, fromWire, toWire } from '../src/scale/wire.js';
import { VERSION } from '../src/version.js';

/** Through JSON as BullMQ stores a job's data and return value. */
const viaRedis = <T>(x: T): unknown => JSON.parse(JSON.stringify(x));

const model: ModelRef = { kind: 'name', key: 'mini-gpt2@abc', name: 'mini-gpt2', hash: 'abc' };
const shard: ShardSpec = {
  key: 'u#0',
  graph: { nLayers: 2, nHeads: 4, hasMlp: true, qkv: true },
  data: { clean: [[1, 2, 3]], corrupted: [[1, 4, 3]], answers: [[5]], wrongs: [[6, 7]] },
  metric: 'logit-diff',
  direction: 'noise',
  ablation: 'patch',
  batchSize: 8,
  stackBudget: 2 ** 25,
  maxRows: 64,
};
const mask = { index: Int32Array.from([3, 17]), value: Float32Array.from([0, 0.25]) };

const tasks: WorkerTask[] = [
  { kind: 'open', backend: 'wasm', model, shard },
  { kind: 'evaluate', backend: 'wasm', model, shard, masks: [mask, { index: new Int32Array(0), value: new Float32Array(0) }] },
  { kind: 'evaluate', backend: 'wasm', model, shard, masks: [mask], base: { key: 'b1', mask } },
  { kind: 'attribute', backend: 'wasm', model, shard, method: 'eap-ig', steps: 5 },
  { kind: 'sweep', backend: 'wasm', model, shard, sweep: { kind: 'neurons', layer: 1 }, positionLabels: ['a', 'b', 'c'] },
  { kind: 'sweep', backend: 'wasm', model, shard, sweep: { kind: 'heads' } },
  { kind: 'per-example', backend: 'wasm', model, shard, targets: { kind: 'edges', edges: ['a0.h1->m1'] } },
  { kind: 'per-example', backend: 'wasm', model, shard, targets: { kind: 'sites', sites: [{ name: 'L0 H1', parts: [{ hook: 'blocks.0.attn.hook_z', select: [null, 1, null] }] }] } },
  { kind: 'trace', backend: 'wasm', model, tokens: [1, 2, 3], answer: [4], options: { samples: 4, seed: 0, kinds: ['resid_pre', 'mlp_out'], share: { index: 1, count: 2 } } },
  { kind: 'close', shard: 'u#0' },
  { kind: 'noop' },
  { kind: 'attribute-data', backend: 'wasm', model, graph: shard.graph, data: shard.data, method: 'eap-ig', options: { metric: 'logit-diff', steps: 5, batchSize: 8, gradient: 'split', interpolation: 'eap-ig' } },
];

const replies: WorkerReply[] = [
  { ok: true, sizes: [8, 8], clean: [1.5, -0.25], corrupted: [NaN, -Infinity] },
  { ok: true, values: [[0.1, 1 / 3], [Infinity, 2 ** -1074, -0]], passes: 4 },
  { ok: true, scores: Float32Array.from([0.5, -1e-30, NaN]), passes: 2 },
  { ok: true, perExample: [Float64Array.from([Math.PI, -0])], base: Float64Array.from([1e308]), passes: 1, cachePasses: 1 },
  {
    ok: true,
    trace: {
      tokens: [1, 2],
      answer: [3],
      metric: 'prob',
      noisePositions: [0],
      sigma: 0.3,
      sigmaScale: 3,
      embeddingStd: 0.1,
      samples: 2,
      seed: 0,
      window: 1,
      clean: 0.9,
      corrupted: 0.1,
      corruptedPerSample: [0.1, 0.1],
      maps: [{ kind: 'resid_pre', rows: ['0'], cols: ['a', 'b'], restored: [[NaN, 0.5]], indirect: [[NaN, 0.4]], recovery: [[NaN, 0.5]], peak: { layer: 0, position: 1, value: 0.5 } }],
      forwardPasses: 6,
    },
  },
  {
    ok: true,
    attribution: { method: 'eap', scores: Float32Array.from([0, -0, NaN, 1e-40]), metric: 'kl', direction: 'noise', ablation: 'patch', steps: 1, gradient: 'fused', baseMetric: 0, patchedMetric: 0.25, nExamples: 3, forwardPasses: 2, backwardPasses: 1, seconds: 0.5, warnings: ["KL's gradient vanishes at the clean run"] },
  },
  { ok: true },
  { ok: false, name: 'CircuitryError', message: 'no such model' },
];

describe('scale/wire: pool tasks and replies as JSON (discover --redis)', () => {
  it.each(tasks.map((t, i) => [`${i}: ${t.kind}`, t] as const))('round-trips task %s, typed arrays and all', (_, task) => {
    const back = decodeTask(viaRedis(encodeTask(task)), 'job 1');
    expect(back).toEqual(task);
    if (task.kind === 'evaluate') {
      const b = back as typeof task;
      expect(b.masks[0].index).toBeInstanceOf(Int32Array);
      expect(b.masks[0].value).toBeInstanceOf(Float32Array);
    }
  });

  it.each(replies.map((r, i) => [i, r] as const))('round-trips reply %i bit for bit (NaN, ±Infinity, -0, subnormal floats)', (_, reply) => {
    const back = decodeReply(viaRedis(encodeReply(reply)), 'job 1');
    expect(back).toEqual(reply);
    if (reply.ok && reply.scores) expect(Buffer.from((back as typeof reply).scores!.buffer)).toEqual(Buffer.from(reply.scores.buffer));
    if (reply.ok && reply.perExample) expect(Object.is((back as typeof reply).perExample![0][1], -0)).toBe(true);
    if (reply.ok && reply.values) expect(Object.is((back as typeof reply).values![1][2], -0)).toBe(true);
  });

  it('a typed array view into a larger buffer sends only its own values', () => {
    const big = Float32Array.from([1, 2, 3, 4]);
    expect(fromWire(viaRedis(toWire(big.subarray(1, 3))))).toEqual(Float32Array.from([2, 3]));
  });

  it('refuses tasks that cannot travel, where they are sent', () => {
    const shared: ModelRef = { kind: 'shared', key: 'k', config: {}, bytes: new SharedArrayBuffer(8), source: 'x' };
    expect(() => encodeTask({ kind: 'open', backend: 'wasm', model: shared, shard })).toThrow(/with shared weights cannot travel over Redis: a remote worker gets the model by name/);
  });

  it('refuses malformed tasks with a message naming the field', () => {
    const good = viaRedis(encodeTask(tasks[2]));
    /** The job with the value at a dotted path replaced (undefined: deleted). */
    const bad = (path: string, value: unknown) => {
      const j = structuredClone(good) as Record<string, unknown>;
      const keys = path.split('.');
      const parent = keys.slice(0, -1).reduce<Record<string, unknown>>((o, k) => o[k] as Record<string, unknown>, j);
      if (value === undefined) delete parent[keys.at(-1)!];
      else parent[keys.at(-1)!] = value;
      return () => decodeTask(j, 'job 7');
    };
    expect(bad('task.shard.metric', 'loss')).toThrow(/^job 7: invalid shard task: task\.shard\.metric: /);
    expect(bad('task.shard.data.clean.0.1', 'x')).toThrow(/task\.shard\.data\.clean\.0\.1: /);
    expect(bad('task.masks.0.index', [3, 17])).toThrow(/task\.masks\.0\.index: expected an int32 array/);
    expect(bad('task.masks.0.value.b64', 'AAA')).toThrow(/task\.masks\.0\.value\.b64: 2 bytes is not a whole number of f32 values/);
    expect(bad('task.masks.0.value.$t', 'u8')).toThrow(/task\.masks\.0\.value: unknown array type "u8"/);
    expect(bad('task.masks.0.value', { $t: 'f32', b64: 'AAAAAA==' })).toThrow(/task\.masks\.0: index and value must have the same length/);
    expect(bad('task.base.key', 5)).toThrow(/task\.base\.key: /);
    expect(bad('task.model', { kind: 'shared', key: 'k' })).toThrow(/task\.model\.kind: expected 'name'/);
    expect(bad('task.kind', 'rm -rf')).toThrow(/task\.kind: /);
    expect(bad('task.extra', 1)).toThrow(/task: .*extra/);
    expect(bad('version', undefined)).toThrow(/^job 7: version: expected a semver version/);
    expect(() => decodeTask('evaluate', 'job 7')).toThrow(/expected a shard job object, got string/);
  });

  it('refuses a job of another circuitry major version, naming both versions', () => {
    const major = Number(VERSION.split('.')[0]) + 1;
    const job = { ...(viaRedis(encodeTask({ kind: 'noop' })) as object), version: `${major}.0.0` };
    expect(() => decodeTask(job, 'job 9')).toThrow(`job 9: made by circuitry ${major}.0.0, but this worker is circuitry ${VERSION}; run workers of major version ${major} for it`);
  });

  it('refuses a malformed reply with a message naming the field', () => {
    const good = viaRedis(encodeReply(replies[1])) as object;
    expect(() => decodeReply({ ...good, values: [['x']] }, 'job 3')).toThrow(/^job 3: the worker returned a malformed reply \(reply\.values\.0\.0: expected a number\)/);
    expect(() => decodeReply({ ...good, scores: [1, 2] }, 'job 3')).toThrow(/reply\.scores: expected a float32 array/);
    expect(() => decodeReply({ ok: false, name: 'E' }, 'job 3')).toThrow(/reply\.message: /);
    expect(() => decodeReply({ ...good, values: [[{ $n: 'huge' }]] }, 'job 3')).toThrow(/reply\.values\.0\.0: unknown number tag "huge"/);
  });
});

describe('a worker given a model by name', () => {
  it('refuses weights whose hash differs from the coordinator’s, naming both', async () => {
    const { handleTask } = await import('../src/scale/worker.js');
    const graph = { nLayers: 1, nHeads: 1, hasMlp: true, qkv: true };
    const reply = await handleTask({ kind: 'open', backend: 'cpu', model: { kind: 'name', key: 'planted-and@x', name: 'planted-and', hash: '0123456789abcdef0123' }, shard: { ...shard, graph } });
    expect(reply.ok).toBe(false);
    expect(reply.ok === false && reply.message).toMatch(/^model 'planted-and' on \S+ has weights hash [0-9a-f]{16}, but the coordinator's has 0123456789abcdef: give this worker the same weights/);
  });
});
