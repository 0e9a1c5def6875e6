import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { configFromHf } from '../src/model/config.js';
import { gpt2WeightsFromTensors } from '../src/model/weights.js';
import { Transformer } from '../src/model/transformer.js';
import type { HookName } from '../src/model/hooks.js';
import { CircuitGraph } from '../src/graph/graph.js';
import { Patcher } from '../src/patching/patcher.js';
import { CircuitryError } from '../src/errors.js';
import { zooModel, zooModels, type ZooDataset, type ZooModel, type ZooTensor } from '../src/zoo/index.js';
import '../src/zoo/builtin.js';

/**
 * The planted-circuit zoo models: each solves its task, and its ground truth is exactly the set
 * of edges that matter under the task's corruption. Edge-level claims are measured with the
 * patching engine (noising: clean run, patched edges carry the corrupted run's values);
 * mechanistic claims (attention patterns, direct logit attribution) with the runtime's hooks.
 */

const PLANTED = ['planted-induction', 'planted-and', 'planted-or', 'planted-negative'] as const;
const N = 32;
const SEED = 11;

interface Setup {
  readonly zoo: ZooModel;
  readonly task: string;
  readonly tensors: Map<string, ZooTensor>;
  readonly model: Transformer;
  readonly graph: CircuitGraph;
  readonly data: ZooDataset;
  readonly gt: ReadonlySet<string>;
  readonly noise: Patcher;
  /** Single-edge noising effect of every edge as a fraction of clean − corrupted, by name. */
  readonly effects: Map<string, number>;
}

function setUp(name: string): Setup {
  const zoo = zooModel(name);
  if (!zoo?.build || !zoo.dataset || !zoo.groundTruth) throw new Error(`${name} is not a planted zoo model`);
  const task = zoo.tasks[0];
  const { config, tensors } = zoo.build();
  const cfg = configFromHf(config, name);
  const model = new Transformer(cfg, gpt2WeightsFromTensors(cfg, tensors, name));
  const graph = new CircuitGraph({ nLayers: cfg.nLayers, nHeads: cfg.nHeads, hasMlp: !cfg.attnOnly, qkv: true });
  const data = zoo.dataset(task, { n: N, seed: SEED });
  const noise = new Patcher(model, graph, data, { metric: 'logit-diff', direction: 'noise' });
  // one evaluate per destination layer, so masks patching only later layers skip the earlier ones
  const span = noise.cleanMetric - noise.corruptedMetric;
  const effects = new Map<string, number>();
  for (let l = 0; l <= cfg.nLayers; l++) {
    const edges = graph.edges.filter((e) => graph.destinations[e.dst].layer === l);
    const values = noise.evaluate(edges.map((e) => patching(graph, [e.name])));
    edges.forEach((e, i) => effects.set(e.name, (noise.cleanMetric - values[i]) / span));
  }
  if (effects.size !== graph.nEdges) throw new Error('not every edge was measured');
  return { zoo, task, tensors, model, graph, data, gt: new Set(zoo.groundTruth[task]), noise, effects };
}

function tearDown(s: Setup | undefined): void {
  s?.noise.dispose();
  s?.model.dispose();
}

/** A mask keeping every edge except `names` (0 = take the value from the other run). */
function patching(graph: CircuitGraph, names: Iterable<string>): Float32Array {
  const m = graph.denseEdgeArray(1);
  for (const n of names) m[graph.edge(n).index] = 0;
  return m;
}

/** A mask keeping only `names`. */
function keepingOnly(graph: CircuitGraph, names: ReadonlySet<string>): Float32Array {
  return patching(graph, graph.edges.filter((e) => !names.has(e.name)).map((e) => e.name));
}

/** Every edge leaving `node`. */
function outgoing(graph: CircuitGraph, node: string): string[] {
  return graph.edges.filter((e) => graph.sources[e.src].name === node).map((e) => e.name);
}

/** (patched − corrupted) / (clean − corrupted). */
function recovery(p: Patcher, value: number): number {
  return (value - p.corruptedMetric) / (p.cleanMetric - p.corruptedMetric);
}

/** An activation at the last position of every prompt, as [batch][...rest] arrays. */
function lastPosition(t: tf.Tensor): number[][] {
  const [b, p] = t.shape;
  const rest = t.size / (b * p);
  const data = t.dataSync();
  return Array.from({ length: b }, (_, i) => Array.from(data.subarray((i * p + p - 1) * rest, (i * p + p) * rest)));
}

beforeAll(async () => {
  await initBackend();
});

describe('planted zoo: registry and construction', () => {
  it('registers the four planted models with a ground truth for their task', () => {
    const names = zooModels().map((m) => m.name);
    for (const name of PLANTED) {
      expect(names).toContain(name);
      const m = zooModel(name)!;
      expect(m.kind).toBe('planted');
      expect(m.tasks.length).toBeGreaterThan(0);
      const gt = m.groundTruth![m.tasks[0]];
      expect(gt.length).toBeGreaterThanOrEqual(4);
      expect(new Set(gt).size).toBe(gt.length);
    }
  });

  for (const name of PLANTED) {
    it(`${name}: a GPT-2 with LayerNorm and MLPs whose ground truth names edges of its graph`, () => {
      const m = zooModel(name)!;
      const { config, tensors } = m.build!();
      const cfg = configFromHf(config, name);
      expect(cfg.attnOnly).toBe(false);
      expect(cfg.normalization).toBe('LN');
      expect(cfg.nCtx).toBeGreaterThanOrEqual(16);
      expect(cfg.dVocab).toBe(m.vocab.length);
      expect(() => gpt2WeightsFromTensors(cfg, tensors, name)).not.toThrow();
      // the MLPs and LayerNorms are real weights, not placeholders
      for (const l of [0, 1]) expect(tensors.get(`h.${l}.mlp.c_fc.weight`)!.data.some((x) => x !== 0)).toBe(true);
      const graph = new CircuitGraph({ nLayers: cfg.nLayers, nHeads: cfg.nHeads, hasMlp: true, qkv: true });
      for (const e of m.groundTruth![m.tasks[0]]) expect(graph.hasEdge(e), e).toBe(true);
      // every embedding row has zero mean and one norm, so LayerNorm statistics ignore the token
      for (const key of ['wte.weight', 'wpe.weight']) {
        const t = tensors.get(key)!;
        const [rows, d] = t.shape;
        const norms: number[] = [];
        for (let r = 0; r < rows; r++) {
          const row = t.data.subarray(r * d, (r + 1) * d);
          expect(Math.abs(row.reduce((s, x) => s + x, 0) / d), `${key} row ${r} mean`).toBeLessThan(1e-5);
          norms.push(Math.hypot(...row));
        }
        expect(Math.max(...norms) - Math.min(...norms), `${key} row norms`).toBeLessThan(1e-4);
      }
    });

    it(`${name}: datasets are deterministic, aligned and validated`, () => {
      const m = zooModel(name)!;
      const task = m.tasks[0];
      const a = m.dataset!(task, { n: 16, seed: 3 });
      expect(m.dataset!(task, { n: 16, seed: 3 })).toEqual(a);
      expect(m.dataset!(task, { n: 16, seed: 4 }).clean).not.toEqual(a.clean);
      expect(a.clean).toHaveLength(16);
      const len = a.clean[0].length;
      for (let i = 0; i < 16; i++) {
        expect(a.clean[i]).toHaveLength(len);
        expect(a.corrupted[i]).toHaveLength(len);
        expect(a.clean[i]).not.toEqual(a.corrupted[i]);
        // the prompts end alike: the last position is where the metric is read
        expect(a.corrupted[i][len - 1]).toBe(a.clean[i][len - 1]);
        expect(a.answers[i]).toHaveLength(1);
        expect(a.wrongs[i]).toHaveLength(1);
        expect(a.answers[i][0]).not.toBe(a.wrongs[i][0]);
        for (const id of [...a.clean[i], ...a.corrupted[i], ...a.answers[i], ...a.wrongs[i]]) {
          expect(id >= 0 && id < m.vocab.length).toBe(true);
        }
      }
      expect(() => m.dataset!('no-such-task', { n: 4, seed: 1 })).toThrow(CircuitryError);
      expect(() => m.dataset!(task, { n: 0, seed: 1 })).toThrow(CircuitryError);
      expect(() => m.dataset!(task, { n: 4, seed: 0.5 })).toThrow(/seed/);
    });
  }
});

for (const name of PLANTED) {
  describe(`${name}: task and ground truth under patching`, () => {
    let s: Setup;
    beforeAll(() => {
      s = setUp(name);
    });
    afterAll(() => tearDown(s));

    it('solves its task: clean logit difference > 2, accuracy 100%, corruption removes it', () => {
      const acc = new Patcher(s.model, s.graph, s.data, { metric: 'accuracy' });
      try {
        expect(acc.cleanMetric).toBeGreaterThanOrEqual(0.97);
        expect(acc.corruptedMetric).toBeLessThanOrEqual(0.03);
      } finally {
        acc.dispose();
      }
      expect(s.noise.cleanMetric).toBeGreaterThan(2);
      expect(s.noise.cleanMetric - s.noise.corruptedMetric).toBeGreaterThan(4);
      expect(s.noise.corruptedMetric).toBeLessThan(0.5);
    });

    it('LayerNorm sees the same residual norm in the clean and the corrupted run, at every position', () => {
      const names: HookName[] = ['blocks.0.hook_resid_pre', 'blocks.1.hook_resid_pre', 'blocks.1.hook_resid_post'];
      const clean = s.model.runWithCache(s.data.clean, names);
      const corrupted = s.model.runWithCache(s.data.corrupted, names);
      try {
        for (const n of names) {
          const [a, b] = [clean, corrupted].map((r) => {
            const norms = tf.norm(r.cache.get(n)!, 'euclidean', -1);
            const out = norms.dataSync();
            norms.dispose();
            return out;
          });
          let worst = 0;
          for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / a[i]);
          expect(worst, n).toBeLessThan(2e-3);
        }
      } finally {
        for (const r of [clean, corrupted]) {
          r.logits.dispose();
          r.cache.forEach((t) => t.dispose());
        }
      }
    });

    it('keeping only the ground-truth edges clean retains >= 90% of the logit difference', () => {
      expect(recovery(s.noise, s.noise.evaluateOne(keepingOnly(s.graph, s.gt)))).toBeGreaterThanOrEqual(0.9);
    });

    it('patching only the ground-truth edges removes the logit difference (nothing else carries it)', () => {
      const left = recovery(s.noise, s.noise.evaluateOne(patching(s.graph, s.gt)));
      if (name === 'planted-or') {
        // except the backup head: with both primaries' inputs patched it sees no signal and
        // copies the (still clean) word itself, 0.6 of the ±1 range, i.e. 30%
        expect(left).toBeGreaterThan(0.2);
        expect(left).toBeLessThan(0.4);
      } else {
        expect(Math.abs(left)).toBeLessThan(0.1);
      }
    });

    it('every edge outside the ground truth has a single-edge effect < 1% of clean − corrupted', () => {
      const worst = [...s.effects].filter(([e]) => !s.gt.has(e)).reduce((a, b) => (Math.abs(b[1]) > Math.abs(a[1]) ? b : a));
      expect(Math.abs(worst[1]), worst[0]).toBeLessThan(0.01);
    });

    it('every ground-truth edge has a clear single-edge effect (>= 10%)', () => {
      for (const e of s.gt) expect(Math.abs(s.effects.get(e)!), e).toBeGreaterThanOrEqual(0.1);
    });

    it('the mask gradient (EAP) ranks every ground-truth edge above every other edge', () => {
      const { grad } = s.noise.maskGradient();
      const score = (e: string) => Math.abs(grad[s.graph.edge(e).index]);
      const lowestGt = Math.min(...[...s.gt].map(score));
      const highestOther = Math.max(...s.graph.edges.filter((e) => !s.gt.has(e.name)).map((e) => score(e.name)));
      expect(lowestGt).toBeGreaterThan(10 * highestOther);
    });

    it("under ACDC's default metric (KL from the clean run) every ground-truth edge matters", () => {
      const kl = new Patcher(s.model, s.graph, s.data, { metric: 'kl' });
      try {
        const values = kl.evaluate([...s.gt].map((e) => patching(s.graph, [e])));
        [...s.gt].forEach((e, i) => expect(values[i], e).toBeGreaterThan(0.05));
        expect(kl.evaluateOne(keepingOnly(s.graph, s.gt))).toBeLessThan(0.01);
      } finally {
        kl.dispose();
      }
    });

    if (name === 'planted-induction') {
      it('a0.h1 attends to the previous token; a1.h2 to the token after the earlier occurrence', () => {
        const names: HookName[] = ['blocks.0.attn.hook_pattern', 'blocks.1.attn.hook_pattern'];
        const clean = s.model.runWithCache(s.data.clean, names);
        const corrupted = s.model.runWithCache(s.data.corrupted, names);
        try {
          const [B, H, P] = clean.cache.get(names[0])!.shape;
          const prev = clean.cache.get(names[0])!.dataSync();
          const ind = clean.cache.get(names[1])!.dataSync();
          const indCorrupted = corrupted.cache.get(names[1])!.dataSync();
          const at = (data: ArrayLike<number>, b: number, h: number, q: number, k: number) => data[((b * H + h) * P + q) * P + k];
          const L = P / 2; // prompts are BOS + 2L - 1 tokens
          for (let b = 0; b < B; b++) {
            for (let q = 1; q < P; q++) expect(at(prev, b, 1, q, q - 1)).toBeGreaterThan(0.99);
            // the answer's first occurrence is position L (BOS is position 0)
            expect(at(ind, b, 2, P - 1, L)).toBeGreaterThan(0.85);
            expect(at(indCorrupted, b, 2, P - 1, 0)).toBeGreaterThan(0.9);
          }
        } finally {
          for (const r of [clean, corrupted]) {
            r.logits.dispose();
            r.cache.forEach((t) => t.dispose());
          }
        }
      });
    }

    if (name === 'planted-and') {
      it('AND chain: removing any one ground-truth edge loses > 30%, from the full model and from the circuit', () => {
        const full = s.noise.evaluate([...s.gt].map((e) => patching(s.graph, [e])));
        const circuit = s.noise.evaluate(
          [...s.gt].map((e) => keepingOnly(s.graph, new Set([...s.gt].filter((x) => x !== e)))),
        );
        [...s.gt].forEach((e, i) => {
          expect(1 - recovery(s.noise, full[i]), e).toBeGreaterThan(0.3);
          expect(1 - recovery(s.noise, circuit[i]), e).toBeGreaterThan(0.3);
        });
      });

      it('AND, not OR: restoring one input of the AND into the corrupted run recovers nothing', () => {
        const denoise = new Patcher(s.model, s.graph, s.data, { metric: 'logit-diff', direction: 'denoise' });
        try {
          const [first, second, both] = denoise.evaluate([
            patching(s.graph, ['input->a0.h2<v>']),
            patching(s.graph, ['input->m0']),
            patching(s.graph, ['input->a0.h2<v>', 'input->m0']),
          ]);
          expect(Math.abs(recovery(denoise, first))).toBeLessThan(0.05);
          expect(Math.abs(recovery(denoise, second))).toBeLessThan(0.05);
          expect(recovery(denoise, both)).toBeGreaterThan(0.9);
        } finally {
          denoise.dispose();
        }
      });
    }

    if (name === 'planted-or') {
      const P1 = 'a0.h1';
      const P2 = 'a0.h3';
      const BACKUP = 'a1.h2';

      it('OR pair under noising: removing one head loses little (< 20%), removing both loses most (> 50%)', () => {
        const [one, other, both, bothIntoGate, bothAndBackup] = s.noise.evaluate([
          patching(s.graph, outgoing(s.graph, P1)),
          patching(s.graph, outgoing(s.graph, P2)),
          patching(s.graph, [...outgoing(s.graph, P1), ...outgoing(s.graph, P2)]),
          patching(s.graph, [`${P1}->m0`, `${P2}->m0`]),
          patching(s.graph, [...outgoing(s.graph, P1), ...outgoing(s.graph, P2), ...outgoing(s.graph, BACKUP)]),
        ]);
        const loss = (v: number) => 1 - recovery(s.noise, v);
        expect(loss(one)).toBeLessThan(0.2);
        expect(loss(other)).toBeLessThan(0.2);
        // neither is necessary, but each matters a little (the OR is leaky): ACDC keeps both
        expect(loss(one)).toBeGreaterThan(0.05);
        expect(loss(both)).toBeGreaterThan(0.5);
        // the backup head takes over part of the job when both heads are ablated as nodes …
        expect(loss(bothIntoGate)).toBeGreaterThan(0.95);
        expect(loss(both)).toBeLessThan(loss(bothIntoGate) - 0.2);
        // … and without it the loss is total
        expect(loss(bothAndBackup)).toBeGreaterThan(0.95);
      });

      it('OR pair under denoising: restoring only one head recovers most of the logit difference', () => {
        const denoise = new Patcher(s.model, s.graph, s.data, { metric: 'logit-diff', direction: 'denoise' });
        try {
          const [one, other] = denoise.evaluate([patching(s.graph, outgoing(s.graph, P1)), patching(s.graph, outgoing(s.graph, P2))]);
          expect(recovery(denoise, one)).toBeGreaterThan(0.8);
          expect(recovery(denoise, other)).toBeGreaterThan(0.8);
          // noising and denoising disagree about the same head
          expect(1 - s.effects.get(`input->${P1}<v>`)!).toBeGreaterThan(0.8);
          // the backup is invisible to single-edge noising but visible to denoising: in the corrupted
          // run it is active, so restoring its value input alone recovers a part
          expect(Math.abs(s.effects.get(`input->${BACKUP}<v>`)!)).toBeLessThan(0.01);
          const [backupValue] = denoise.evaluate([patching(s.graph, [`input->${BACKUP}<v>`])]);
          expect(recovery(denoise, backupValue)).toBeGreaterThan(0.2);
        } finally {
          denoise.dispose();
        }
      });

      it('the backup head attends to BOS while a primary signals and to the word once both are patched (hooks)', () => {
        const pattern = 'blocks.1.attn.hook_pattern' as HookName;
        const result = 'blocks.0.attn.hook_result' as HookName;
        const corrupted = s.model.runWithCache(s.data.corrupted, [result]);
        const corruptedResult = corrupted.cache.get(result)!;
        const H = s.model.cfg.nHeads;
        const sel = tf.tensor4d(Array.from({ length: H }, (_, h) => (h === 1 || h === 3 ? 1 : 0)), [1, 1, H, 1]);
        const patchBoth = new Map([[result, (act: tf.Tensor) => tf.add(tf.mul(act, tf.sub(1, sel)), tf.mul(corruptedResult, sel))]]);
        const clean = s.model.runWithCache(s.data.clean, [pattern]);
        const patched = s.model.runWithCache(s.data.clean, [pattern], { hooks: patchBoth });
        try {
          // the backup's attention from the last position: [batch][key position]
          const backupRow = (t: tf.Tensor) => {
            const rows = tf.tidy(() => tf.transpose(tf.slice(t, [0, 2, 0, 0], [-1, 1, -1, -1]), [0, 2, 1, 3]));
            const out = lastPosition(rows);
            rows.dispose();
            return out;
          };
          for (const row of backupRow(clean.cache.get(pattern)!)) expect(row[0]).toBeGreaterThan(0.99);
          for (const row of backupRow(patched.cache.get(pattern)!)) expect(row[1]).toBeGreaterThan(0.99);
        } finally {
          sel.dispose();
          for (const r of [corrupted, clean, patched]) {
            r.logits.dispose();
            r.cache.forEach((t) => t.dispose());
          }
        }
      });
    }

    if (name === 'planted-negative') {
      it("the negative head's direct effect on the logit difference is negative", () => {
        const resid = 'blocks.1.hook_resid_post' as HookName;
        const result = 'blocks.1.attn.hook_result' as HookName;
        const run = s.model.runWithCache(s.data.clean, [resid, result]);
        try {
          const d = s.model.cfg.dModel;
          const lnW = s.tensors.get('ln_f.weight')!.data;
          const unembed = s.tensors.get('lm_head.weight')!.data;
          const finals = lastPosition(run.cache.get(resid)!);
          const heads = lastPosition(run.cache.get(result)!);
          const dla = (b: number, head: number) => {
            const x = finals[b];
            const mean = x.reduce((a, v) => a + v, 0) / d;
            const sigma = Math.sqrt(x.reduce((a, v) => a + (v - mean) ** 2, 0) / d + s.model.cfg.lnEps);
            const c = heads[b].slice(head * d, (head + 1) * d);
            const cMean = c.reduce((a, v) => a + v, 0) / d;
            const [ans, wrong] = [s.data.answers[b][0], s.data.wrongs[b][0]];
            let v = 0;
            for (let i = 0; i < d; i++) v += ((c[i] - cMean) / sigma) * lnW[i] * (unembed[ans * d + i] - unembed[wrong * d + i]);
            return v;
          };
          for (let b = 0; b < s.data.clean.length; b++) expect(dla(b, 1)).toBeLessThan(-1);
        } finally {
          run.logits.dispose();
          run.cache.forEach((t) => t.dispose());
        }
        // patching its output to the logits (its direct path) raises the logit difference
        expect(s.effects.get('a1.h1->logits')!).toBeLessThan(-0.3);
        // while the positive head's direct path carries the answer
        expect(s.effects.get('a0.h3->logits')!).toBeGreaterThan(1);
      });
    }
  });
}
