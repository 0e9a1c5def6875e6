import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../src/backend/index.js';
import { modelFromTensors } from '../src/model/arch/index.js';
import { readSafetensors } from '../src/model/safetensors.js';
import { WordTokenizer } from '../src/model/tokenizer.js';
import type { Transformer } from '../src/model/transformer.js';
import { MetricTargets, metricPerExample, type MetricName } from '../src/metrics/index.js';
import type { TaskDataset } from '../src/tasks/dataset.js';
import { greaterThanDataset } from '../src/tasks/greater-than.js';
import { inductionDataset } from '../src/tasks/induction.js';
import { ioiDataset } from '../src/tasks/ioi.js';
import { zooModel } from '../src/zoo/index.js';
import { ZOO_VOCAB } from '../src/zoo/vocab.js';
import { MINI_GPT2_DIR, MINI_GPT2_L4H8_DIR, MINI_LLAMA_DIR } from '../src/zoo/trained/index.js';
import { CircuitGraph } from '../src/graph/graph.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Held-out seeds: training only uses generator seeds >= 1e9 (scripts/zoo-data.ts). */
const HELD_OUT_SEEDS = [7, 2024];
const N = 100;

const generators: Record<string, (tok: WordTokenizer, o: { n: number; seed: number; bos?: string }) => TaskDataset> = {
  ioi: ioiDataset,
  'greater-than': greaterThanDataset,
  induction: inductionDataset,
};

function loadShipped(dir = MINI_GPT2_DIR): Transformer {
  return modelFromTensors(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')), readSafetensors(join(dir, 'model.safetensors')), dir);
}

function metric(model: Transformer, name: MetricName, rows: number[][], ds: TaskDataset): number[] {
  const targets = new MetricTargets(ds.answers, ds.wrongs, model.cfg.dVocab);
  try {
    return tf.tidy(() => Array.from(metricPerExample(name, model.forward(rows), targets).dataSync()));
  } finally {
    targets.dispose();
  }
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe.each([
  { name: 'mini-gpt2', dir: MINI_GPT2_DIR, family: 'gpt2', layers: 3, heads: 4, kvHeads: 4, edges: 262 },
  { name: 'mini-gpt2-l4h8', dir: MINI_GPT2_L4H8_DIR, family: 'gpt2', layers: 4, heads: 8, kvHeads: 8, edges: 1519 },
  // the modern block: rotary, RMSNorm, SwiGLU, 4 query heads sharing 2 key/value heads
  { name: 'mini-llama', dir: MINI_LLAMA_DIR, family: 'llama', layers: 3, heads: 4, kvHeads: 2, edges: 262 },
])('$name, a trained zoo model', ({ name, dir, family, layers, heads, kvHeads, edges }) => {
  let model: Transformer;
  let tok: WordTokenizer;
  beforeAll(async () => {
    await initBackend('wasm');
    model = loadShipped(dir);
    tok = new WordTokenizer(JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8')) as string[]);
  });
  afterAll(() => model?.dispose());

  it('is registered in the zoo with its folder, vocabulary, tasks (ioi first) and shape', () => {
    const z = zooModel(name);
    expect(z?.kind).toBe('trained');
    expect(z?.tasks).toEqual(['ioi', 'greater-than', 'induction']);
    expect(z?.dir).toBe(dir);
    for (const f of ['config.json', 'model.safetensors', 'vocab.json', 'MODEL_CARD.md']) expect(existsSync(join(dir, f))).toBe(true);
    // the shipped vocabulary is the zoo vocabulary (append-only) and matches the weights
    expect(z?.vocab).toEqual(ZOO_VOCAB.slice(0, z!.vocab.length));
    expect(model.cfg.dVocab).toBe(z!.vocab.length);
    expect([model.cfg.family, model.cfg.nLayers, model.cfg.nHeads, model.cfg.nKvHeads]).toEqual([family, layers, heads, kvHeads]);
    if (family === 'llama') {
      expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))).toMatchObject({ model_type: 'llama', architectures: ['LlamaForCausalLM'] });
      expect([model.cfg.positional, model.cfg.normalization, model.cfg.gatedMlp, model.cfg.act]).toEqual(['rotary', 'RMS', true, 'silu']);
    }
    expect(new CircuitGraph({ nLayers: layers, nHeads: heads, hasMlp: true, qkv: true }).nEdges).toBe(edges);
    expect(statSync(join(dir, 'model.safetensors')).size).toBeLessThan(5_000_000);
  });

  for (const task of Object.keys(generators)) {
    it(`${task}: >= 95% top-1 accuracy on held-out seeds, with a clear clean-corrupted gap`, () => {
      // the model caches per-length masks and transposed weights on first use: warm up first
      for (const bos of [undefined, '<bos>']) {
        const warm = generators[task](tok, { n: 2, seed: 0, ...(bos ? { bos } : {}) });
        metric(model, 'accuracy', warm.clean, warm);
      }
      const before = tf.memory().numTensors;
      const acc: number[] = [];
      const clean: number[] = [];
      const corrupted: number[] = [];
      for (const seed of HELD_OUT_SEEDS) {
        for (const bos of [undefined, '<bos>']) {
          const ds = generators[task](tok, { n: N, seed, ...(bos ? { bos } : {}) });
          acc.push(...metric(model, 'accuracy', ds.clean, ds));
          clean.push(...metric(model, 'logit-diff', ds.clean, ds));
          corrupted.push(...metric(model, 'logit-diff', ds.corrupted, ds));
        }
      }
      expect(acc.length).toBe(HELD_OUT_SEEDS.length * 2 * N);
      expect(mean(acc)).toBeGreaterThanOrEqual(0.95);
      // log Σp(answers) − log Σp(wrongs): clearly positive on clean prompts, far lower on corrupted
      expect(mean(clean)).toBeGreaterThan(2);
      expect(mean(clean) - mean(corrupted)).toBeGreaterThan(2);
      expect(tf.memory().numTensors).toBe(before);
    });
  }
});

describe('mini-gpt2 on greater-than compares years', () => {
  let model: Transformer;
  beforeAll(async () => {
    await initBackend('wasm');
    model = loadShipped();
  });
  afterAll(() => model?.dispose());

  it('moves its predicted year with the start year (not one fixed late year)', () => {
    const tok = new WordTokenizer(JSON.parse(readFileSync(join(MINI_GPT2_DIR, 'vocab.json'), 'utf8')) as string[]);
    const ds = greaterThanDataset(tok, { n: 200, seed: 99 });
    const years = Array.from({ length: 100 }, (_, y) => tok.encode(String(y).padStart(2, '0'))[0]);
    const probs = tf.tidy(() => {
      const logits = model.forward(ds.clean);
      const [b, p, v] = logits.shape;
      const last = tf.reshape(tf.slice(logits, [0, p - 1, 0], [b, 1, v]), [b, v]);
      return tf.gather(tf.softmax(last, -1), years, 1).arraySync() as number[][];
    });
    // "... year XX YY to the year XX": the start year YY is the fifth token from the end
    const start = ds.clean.map((row) => Number(tok.tokenString(row[row.length - 5])));
    const expected = probs.map((p) => p.reduce((a, q, y) => a + q * y, 0) / p.reduce((a, q) => a + q, 0));
    const corr = pearson(start, expected);
    expect(corr).toBeGreaterThan(0.8);
    // and it knows where the boundary is: little mass on the years <= YY
    const below = probs.map((p, i) => p.slice(0, start[i] + 1).reduce((a, q) => a + q, 0));
    expect(mean(below)).toBeLessThan(0.1);
  });
});

function pearson(x: readonly number[], y: readonly number[]): number {
  const mx = mean(x);
  const my = mean(y);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  x.forEach((xi, i) => {
    sxy += (xi - mx) * (y[i] - my);
    sxx += (xi - mx) ** 2;
    syy += (y[i] - my) ** 2;
  });
  return sxy / Math.sqrt(sxx * syy);
}

describe('scripts/train-zoo.ts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'circuitry-train-zoo-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = (name: string, seed: number, extra: readonly string[] = []): Map<string, Float32Array> => {
    const out = join(dir, name);
    execFileSync(process.execPath, [join(ROOT, 'bin', 'run-ts.js'), join(ROOT, 'scripts', 'train-zoo.ts'), '--steps', '5', '--batch-per-task', '8', '--eval-n', '0', '--seed', String(seed), '--out', out, ...extra], {
      cwd: ROOT,
      stdio: 'pipe',
      env: { ...process.env, CIRCUITRY_BACKEND: 'wasm' },
    });
    for (const f of ['config.json', 'model.safetensors', 'vocab.json', 'MODEL_CARD.md']) expect(existsSync(join(out, f))).toBe(true);
    return new Map([...readSafetensors(join(out, 'model.safetensors'))].map(([k, t]) => [k, t.data]));
  };

  it('is deterministic: the same seed gives identical weights, another seed different ones', () => {
    const a = run('a', 3);
    const b = run('b', 3);
    const c = run('c', 4);
    expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
    for (const [k, t] of a) expect(Buffer.from(b.get(k)!.buffer).equals(Buffer.from(t.buffer)), k).toBe(true);
    expect(readFileSync(join(dir, 'a', 'model.safetensors')).equals(readFileSync(join(dir, 'b', 'model.safetensors')))).toBe(true);
    expect(Buffer.from(c.get('wte.weight')!.buffer).equals(Buffer.from(a.get('wte.weight')!.buffer))).toBe(false);
  }, 60_000);

  it('--arch llama trains a HF llama folder (grouped k/v, no biases), deterministically, that loads as a llama model', () => {
    const a = run('llama-a', 3, ['--arch', 'llama']);
    const b = run('llama-b', 3, ['--arch', 'llama']);
    expect(readFileSync(join(dir, 'llama-a', 'model.safetensors')).equals(readFileSync(join(dir, 'llama-b', 'model.safetensors')))).toBe(true);
    const config = JSON.parse(readFileSync(join(dir, 'llama-a', 'config.json'), 'utf8'));
    expect(config).toMatchObject({ model_type: 'llama', num_attention_heads: 4, num_key_value_heads: 2, hidden_size: 64, hidden_act: 'silu', tie_word_embeddings: false });
    expect([...a.keys()].filter((k) => k.includes('bias'))).toEqual([]);
    const shapes = new Map([...readSafetensors(join(dir, 'llama-a', 'model.safetensors'))].map(([k, t]) => [k, t.shape]));
    expect(shapes.get('model.layers.0.self_attn.k_proj.weight')).toEqual([32, 64]);
    expect(shapes.get('model.layers.0.self_attn.q_proj.weight')).toEqual([64, 64]);
    expect(shapes.has('lm_head.weight')).toBe(true);
    expect(b.size).toBe(a.size);
    expect(readFileSync(join(dir, 'llama-a', 'MODEL_CARD.md'), 'utf8')).toContain('npm run train:zoo -- --arch llama --seed 3 --steps 5');
    const model = loadShipped(join(dir, 'llama-a'));
    expect([model.cfg.family, model.cfg.nKvHeads, model.cfg.positional]).toEqual(['llama', 2, 'rotary']);
    model.dispose();
  }, 60_000);

  it('refuses an unknown --arch and --kv-heads on GPT-2, naming the flag, before training', () => {
    const fail = (args: string[]): string => {
      try {
        execFileSync(process.execPath, [join(ROOT, 'bin', 'run-ts.js'), join(ROOT, 'scripts', 'train-zoo.ts'), ...args, '--out', join(dir, 'never')], { cwd: ROOT, stdio: 'pipe' });
      } catch (e) {
        return String((e as { stderr: Buffer }).stderr);
      }
      throw new Error('expected a failure');
    };
    expect(fail(['--arch', 'mamba'])).toContain("train-zoo: --arch: expected gpt2 or llama, got 'mamba'");
    expect(fail(['--kv-heads', '2'])).toContain('train-zoo: --kv-heads: only for --arch llama');
    expect(fail(['--arch', 'llama', '--kv-heads', '3'])).toContain('train-zoo: --kv-heads (3) must divide --heads (4)');
    expect(existsSync(join(dir, 'never'))).toBe(false);
  }, 60_000);
});

describe("mini-llama's induction circuit, as npm start finds it", () => {
  it('is K-composition: layer-1 heads write into the keys of the layer-2 heads that answer', async () => {
    await initBackend('wasm');
    const { loadModel } = await import('../src/model/load.js');
    const { readPipelineConfig } = await import('../src/discovery/config.js');
    const { runPipeline } = await import('../src/discovery/pipeline.js');
    const { resolveDataset } = await import('../src/discovery/data.js');
    const dir = mkdtempSync(join(tmpdir(), 'circuitry-llama-circuit-'));
    const shipped = readPipelineConfig(join(ROOT, 'pipelines', 'mini-llama-induction.yaml'));
    const cfg = { ...shipped, output: { graph: join(dir, 'c.json'), report: join(dir, 'c.html') } };
    const loaded = await loadModel(cfg.model);
    try {
      const { file } = await runPipeline(cfg, loaded, resolveDataset(loaded, { task: cfg.task }));
      const edges = Object.entries(file!.edges).filter(([, e]) => e.in_graph).map(([n]) => n);
      expect(file!.meta!.metrics!.normalized).toBeGreaterThan(0.8);
      expect(edges.length).toBeLessThan(40); // of 262
      const kComposition = edges.filter((e) => /^a1\.h\d->a2\.h\d<k>$/u.test(e));
      expect(kComposition.length).toBeGreaterThanOrEqual(2);
      // the heads whose keys are composed into carry the answer to the logits
      const readers = new Set(kComposition.map((e) => e.split('->')[1].replace('<k>', '')));
      for (const head of readers) expect(edges).toContain(`${head}->logits`);
    } finally {
      loaded.model.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
