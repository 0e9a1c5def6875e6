import type { ModelConfig } from '../model/config.js';
import { type HookName, blockHook } from '../model/hooks.js';
import { runSitePasses } from './site-passes.js';
import { type MetricName, metricPerCopy, recovery } from '../metrics/index.js';
import type { Sweep } from '../graph/circuit-types.js';
import type { Ablation, Direction, Patcher } from './patcher.js';
import type { OnProgress } from './progress.js';
import { verifyEdges } from './path-patching.js';
import { CircuitryError } from '../errors.js';

/**
 * Activation-patching sweeps in the style of TransformerLens' `patching` module: patch one
 * component at a time and record the metric. The direction is the patcher's: `denoise` runs the
 * corrupted prompts and patches in the clean activation (TransformerLens' own convention),
 * `noise` runs the clean prompts and patches in the corrupted one. Ablations other than `patch`
 * write zero or the dataset mean instead.
 *
 * Many components are evaluated in one forward pass: the batch is stacked K times, and each hook
 * writes the patched value into the copies whose component lives there (a per-copy mask), so a
 * sweep of N components over B prompts costs about N·B / (K·B) passes.
 */

export const SWEEP_KINDS = ['resid', 'attn-out', 'mlp-out', 'heads', 'heads-by-pos', 'qkv', 'pattern', 'neurons:L', 'edges'] as const;

type SimpleKind = 'resid' | 'attn-out' | 'mlp-out' | 'heads' | 'heads-by-pos' | 'qkv' | 'pattern' | 'edges';
export type SweepSpec = { readonly kind: SimpleKind } | { readonly kind: 'neurons'; readonly layer: number };

const SIMPLE: readonly SimpleKind[] = ['resid', 'attn-out', 'mlp-out', 'heads', 'heads-by-pos', 'qkv', 'pattern', 'edges'];

/** Parses `resid`, `heads`, …, `neurons:L`. The layer range is checked when the sweep is planned. */
export function parseSweep(text: string, where = '--sweep'): SweepSpec {
  if ((SIMPLE as readonly string[]).includes(text)) return { kind: text as SimpleKind };
  const m = /^neurons:(.*)$/.exec(text);
  if (m) {
    if (!/^\d+$/.test(m[1])) throw new CircuitryError(`${where}: '${text}' needs a layer number after 'neurons:' (e.g. neurons:0)`);
    return { kind: 'neurons', layer: Number(m[1]) };
  }
  if (text === 'neurons') throw new CircuitryError(`${where}: 'neurons' needs a layer, as neurons:L (e.g. neurons:0)`);
  throw new CircuitryError(`${where}: unknown sweep '${text}' (expected one of ${SWEEP_KINDS.join(', ')})`);
}

/** The sweep's name as the CLI spells it (`neurons:3`). */
export function sweepName(spec: SweepSpec): string {
  return spec.kind === 'neurons' ? `neurons:${spec.layer}` : spec.kind;
}

export interface SweepComponent {
  /** a0.h1, a0.h1@3, a0.h1<q>, a0.h1.pattern, m0.n17, blocks.1.hook_resid_pre@4, or an edge name. */
  readonly name: string;
  /** Its cell in the rows × cols matrix. */
  readonly row: number;
  readonly col: number;
  readonly metric: number;
  readonly delta: number;
  readonly recovery: number;
}

/** A sweep's outcome; `sweepToMeta` turns it into an entry of a circuit file's `meta.sweeps`. */
export interface SweepResult {
  readonly kind: string;
  readonly direction: Direction;
  readonly metric: MetricName;
  readonly ablation: Ablation;
  /** The metric of the unpatched clean and corrupted runs. */
  readonly clean: number;
  readonly corrupted: number;
  readonly rows: readonly string[];
  readonly cols: readonly string[];
  readonly components: readonly SweepComponent[];
  /** Patched forward passes (each of up to K stacked copies of a chunk of prompts). */
  readonly forwardPasses: number;
  /** Unpatched passes that recorded the values to patch in (one per chunk; 0 for edges and zero ablation). */
  readonly cachePasses: number;
}

export interface SweepOptions {
  /** Called after each forward pass with components done (summed over chunks of prompts). */
  readonly onProgress?: OnProgress;
  /** Column labels for positions (default "0", "1", …), e.g. the tokens of the first prompt. */
  readonly positionLabels?: readonly string[];
  /** Float budget of one stacked pass (activations, estimated; default 2^25 ≈ 128 MB). */
  readonly stackBudget?: number;
  /** At most this many stacked copies per pass (1 = one patch per pass). */
  readonly maxStack?: number;
}

/** Where a component is patched: a hook, and per activation axis (batch excluded) an index or all. */
export interface PatchSite {
  readonly hook: HookName;
  readonly layer: number;
  readonly select: readonly (number | null)[];
}

export interface PlannedComponent {
  readonly name: string;
  readonly row: number;
  readonly col: number;
  readonly site: PatchSite;
}

export interface SweepPlan {
  readonly kind: string;
  readonly rows: string[];
  readonly cols: string[];
  readonly components: readonly PlannedComponent[];
}

/** Neurons are laid out as rows of this many columns. */
const NEURON_COLS = 64;

/** The components of an activation sweep (not `edges`) for a model and a prompt length. */
export function planSweep(spec: SweepSpec, cfg: ModelConfig, seqLen: number, positionLabels?: readonly string[]): SweepPlan {
  const { nLayers: L, nHeads: H } = cfg;
  const name = sweepName(spec);
  if (positionLabels && positionLabels.length !== seqLen) {
    throw new CircuitryError(`sweep ${name}: ${positionLabels.length} position labels for prompts of ${seqLen} tokens`);
  }
  const positions = positionLabels ? [...positionLabels] : Array.from({ length: seqLen }, (_, i) => String(i));
  const layers = Array.from({ length: L }, (_, l) => `L${l}`);
  const heads = Array.from({ length: H }, (_, h) => `h${h}`);
  const headRows = layers.flatMap((_, l) => heads.map((_h, h) => `a${l}.h${h}`));
  const needMlp = () => {
    if (cfg.attnOnly) throw new CircuitryError(`sweep ${name}: the model is attention-only (it has no MLPs)`);
  };
  const out: PlannedComponent[] = [];
  const byLayerPos = (hook: 'hook_resid_pre' | 'hook_attn_out' | 'hook_mlp_out') => {
    for (let l = 0; l < L; l++) {
      for (let p = 0; p < seqLen; p++) out.push({ name: `blocks.${l}.${hook}@${p}`, row: l, col: p, site: { hook: blockHook(l, hook), layer: l, select: [p, null] } });
    }
    return { rows: layers, cols: positions };
  };
  let rows: string[];
  let cols: string[];
  switch (spec.kind) {
    case 'edges':
      throw new Error('planSweep: the edge sweep runs through the masked engine (runSweep)');
    case 'resid':
      ({ rows, cols } = byLayerPos('hook_resid_pre'));
      break;
    case 'attn-out':
      ({ rows, cols } = byLayerPos('hook_attn_out'));
      break;
    case 'mlp-out':
      needMlp();
      ({ rows, cols } = byLayerPos('hook_mlp_out'));
      break;
    case 'heads':
      // TransformerLens patches hook_z; the head's output z·W_O follows linearly
      for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) out.push({ name: `a${l}.h${h}`, row: l, col: h, site: { hook: blockHook(l, 'attn.hook_z'), layer: l, select: [null, h, null] } });
      rows = layers;
      cols = heads;
      break;
    case 'heads-by-pos':
      for (let l = 0; l < L; l++) {
        for (let h = 0; h < H; h++) {
          for (let p = 0; p < seqLen; p++) out.push({ name: `a${l}.h${h}@${p}`, row: l * H + h, col: p, site: { hook: blockHook(l, 'attn.hook_z'), layer: l, select: [p, h, null] } });
        }
      }
      rows = headRows;
      cols = positions;
      break;
    case 'qkv': {
      const hooks = ['attn.hook_q', 'attn.hook_k', 'attn.hook_v'] as const;
      for (let l = 0; l < L; l++) {
        for (let h = 0; h < H; h++) {
          hooks.forEach((hk, c) => out.push({ name: `a${l}.h${h}<${'qkv'[c]}>`, row: l * H + h, col: c, site: { hook: blockHook(l, hk), layer: l, select: [null, h, null] } }));
        }
      }
      rows = headRows;
      cols = ['q', 'k', 'v'];
      break;
    }
    case 'pattern':
      for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) out.push({ name: `a${l}.h${h}.pattern`, row: l, col: h, site: { hook: blockHook(l, 'attn.hook_pattern'), layer: l, select: [h, null, null] } });
      rows = layers;
      cols = heads;
      break;
    case 'neurons': {
      needMlp();
      const l = spec.layer;
      if (!Number.isInteger(l) || l < 0 || l >= L) throw new CircuitryError(`sweep ${name}: layer ${l} is out of range (the model has layers 0..${L - 1})`);
      const dm = cfg.dMlp;
      const width = Math.min(dm, NEURON_COLS);
      for (let n = 0; n < dm; n++) out.push({ name: `m${l}.n${n}`, row: Math.floor(n / width), col: n % width, site: { hook: blockHook(l, 'mlp.hook_post'), layer: l, select: [null, n] } });
      rows = Array.from({ length: Math.ceil(dm / width) }, (_, r) => `n${r * width}`);
      cols = Array.from({ length: width }, (_, c) => `+${c}`);
      break;
    }
  }
  return { kind: name, rows, cols, components: out };
}

/**
 * Runs a sweep: every component patched alone, in the patcher's direction and ablation, over
 * the whole dataset. `edges` patches each single edge through the masked engine; the rest patch
 * hook activations (TransformerLens' patching module).
 */
export function runSweep(patcher: Patcher, spec: SweepSpec | string, opts: SweepOptions = {}): SweepResult {
  const s = typeof spec === 'string' ? parseSweep(spec) : spec;
  const base = {
    direction: patcher.direction,
    metric: patcher.metric,
    ablation: patcher.ablation,
    clean: patcher.cleanMetric,
    corrupted: patcher.corruptedMetric,
  };
  if (s.kind === 'edges') {
    const g = patcher.graph;
    const before = patcher.forwardPasses;
    const effects = verifyEdges(patcher, g.edges.map((e) => e.name), { onProgress: opts.onProgress });
    const components = effects.map((e, i) => ({ name: e.edge, row: g.edges[i].dst, col: g.edges[i].src, metric: e.metric, delta: e.delta, recovery: e.recovery }));
    return {
      kind: 'edges',
      ...base,
      rows: g.destinations.map((d) => d.name),
      cols: g.sources.map((x) => x.name),
      components,
      forwardPasses: patcher.forwardPasses - before,
      cachePasses: 0,
    };
  }
  let seqLen = 0;
  patcher.forEachChunk(({ run }) => (seqLen = run.tokens.shape[1]));
  const plan = planSweep(s, patcher.engine.model.cfg, seqLen, opts.positionLabels);
  const { chunks, sizes, forwardPasses, cachePasses } = activationSweepChunks(patcher, plan, opts);
  return activationSweepResult(patcher, plan, combineWeighted(chunks, sizes, patcher.nExamples), { forwardPasses, cachePasses });
}

/** What an activation sweep's result needs of the patcher (a Patcher, or a worker pool's). */
type SweepBase = Pick<Patcher, 'direction' | 'metric' | 'ablation' | 'cleanMetric' | 'corruptedMetric' | 'baseMetric'>;

/** An activation sweep's result from each component's dataset-mean metric. */
export function activationSweepResult(patcher: SweepBase, plan: SweepPlan, values: readonly number[], passes: { forwardPasses: number; cachePasses: number }): SweepResult {
  return {
    kind: plan.kind,
    direction: patcher.direction,
    metric: patcher.metric,
    ablation: patcher.ablation,
    clean: patcher.cleanMetric,
    corrupted: patcher.corruptedMetric,
    rows: plan.rows,
    cols: plan.cols,
    components: plan.components.map((c, i) => ({
      name: c.name,
      row: c.row,
      col: c.col,
      metric: values[i],
      delta: values[i] - patcher.baseMetric,
      recovery: recovery(values[i], patcher.cleanMetric, patcher.corruptedMetric),
    })),
    ...passes,
  };
}

/**
 * Per chunk of prompts, each component's metric (chunk mean), with the chunk sizes: what an
 * activation sweep weights and sums (combineWeighted). A pool worker returns these for its chunks.
 */
export function activationSweepChunks(patcher: Patcher, plan: SweepPlan, opts: SweepOptions = {}): { chunks: number[][]; sizes: number[]; forwardPasses: number; cachePasses: number } {
  const comps = plan.components;
  const sites = comps.map((c) => ({ name: c.name, parts: [{ hook: c.site.hook, select: c.site.select }] }));
  const chunks: number[][] = [];
  const sizes: number[] = [];
  const offsets: number[] = [];
  // passes group the components in plan order; each copy's batch mean, per chunk
  const passes = runSitePasses(patcher, sites, comps.map((_, i) => i), opts, (logits, targets) => metricPerCopy(patcher.metric, logits, targets), (group, data, chunk) => {
    if (offsets[offsets.length - 1] !== chunk.offset) {
      offsets.push(chunk.offset);
      sizes.push(chunk.size);
      chunks.push(new Array<number>(comps.length).fill(0));
    }
    const row = chunks[chunks.length - 1];
    group.forEach((c, j) => (row[c] = data[j]));
  });
  return { chunks, sizes, ...passes };
}

/** Σ_chunks value · (size / n), in chunk order: the dataset mean the sweeps record. */
export function combineWeighted(chunks: readonly (readonly number[])[], sizes: readonly number[], nExamples: number): number[] {
  const out = new Array<number>(chunks[0]?.length ?? 0).fill(0);
  chunks.forEach((row, c) => {
    const weight = sizes[c] / nExamples;
    row.forEach((v, i) => (out[i] += v * weight));
  });
  return out;
}

/** A sweep as an entry of a circuit file's `meta.sweeps` (cells without a component are NaN). */
export function sweepToMeta(r: SweepResult): Sweep {
  const grid = () => r.rows.map(() => new Array<number>(r.cols.length).fill(Number.NaN));
  const rec = grid();
  const value = grid();
  for (const c of r.components) {
    rec[c.row][c.col] = c.recovery;
    value[c.row][c.col] = c.metric;
  }
  return { kind: r.kind, direction: r.direction, metric: r.metric, rows: [...r.rows], cols: [...r.cols], recovery: rec, value };
}

/** Components ordered by the size of their effect (|delta|, largest first). */
export function topComponents(r: SweepResult, n = 10): SweepComponent[] {
  return [...r.components].sort((a, b) => Math.abs(b.delta) - Math.abs(a.delta) || a.name.localeCompare(b.name)).slice(0, n);
}
