import { blockHook } from '../model/hooks.js';
import { recovery } from '../metrics/index.js';
import type { Patcher } from '../patching/patcher.js';
import { chunksOf, evaluateSites, seqLenOf, stackSize, type Site, type SiteEvaluationOptions } from './sites.js';
import { CircuitryError } from '../errors.js';

/**
 * Hierarchical activation patching: patch coarse components first and refine only those that
 * matter.
 *
 *   level 1 (layers):     each layer's attention output and MLP output at every position
 *                         (`a3`, `m3`); unit `block` patches both at once (`L3`, the layer's
 *                         whole write into the residual stream)
 *   level 2 (positions):  the kept ones at one position at a time (`a3@5`, `m3@5`, `L3@5`)
 *   level 3 (components): within each kept (layer, position), every head's z (`a3.h7@5`) and
 *                         every MLP neuron (`m3.n120@5`)
 *
 * A component is kept when |effect| ≥ floor, where effect = delta / (fully patched − unpatched)
 * is the share of the whole patch's effect (recovery when denoising, 1 − recovery when
 * noising), so one floor works in both directions and keeps negative components too. Residual-
 * stream patching of a whole layer is not a level: it carries everything and always scores 1.
 */

export type LayerUnit = 'sublayer' | 'block';

export interface HierarchicalOptions extends SiteEvaluationOptions {
  /** Keep components with |effect| at least this (default 0.1). */
  readonly floor?: number;
  readonly unit?: LayerUnit;
  /** What level 3 splits kept positions into (default both). */
  readonly finest?: 'heads' | 'neurons' | 'both';
  /** Per level, at most this many components kept (largest |effect| first; default no cap). */
  readonly maxKeep?: number;
  readonly positionLabels?: readonly string[];
}

export interface LevelComponent {
  readonly name: string;
  readonly metric: number;
  readonly delta: number;
  readonly recovery: number;
  /** delta as a share of the whole patch's effect. */
  readonly effect: number;
  readonly kept: boolean;
}

export interface HierarchicalLevel {
  readonly level: 'layers' | 'positions' | 'components';
  readonly components: readonly LevelComponent[];
  readonly forwardPasses: number;
  readonly cachePasses: number;
}

export interface HierarchicalResult {
  readonly direction: Patcher['direction'];
  readonly metric: Patcher['metric'];
  readonly clean: number;
  readonly corrupted: number;
  readonly floor: number;
  readonly unit: LayerUnit;
  readonly levels: readonly HierarchicalLevel[];
  /** The finest components kept, largest |effect| first. */
  readonly kept: readonly LevelComponent[];
  readonly evaluated: number;
  readonly forwardPasses: number;
  readonly cachePasses: number;
  /** The full sweep of the finest level (every head and neuron at every position), for comparison. */
  readonly fullSweep: { readonly components: number; readonly forwardPasses: number; readonly cachePasses: number };
  /** (forward + cache passes used) / (those of the full sweep). Stacked passes differ in size, so see also patchedFraction. */
  readonly passFraction: number;
  /** Components patched / the full sweep's: the share of its compute (each component costs one pass over the dataset's rows). */
  readonly patchedFraction: number;
}

/** Runs the three levels. */
export function hierarchicalSearch(patcher: Patcher, opts: HierarchicalOptions = {}): HierarchicalResult {
  const floor = opts.floor ?? 0.1;
  if (!(typeof floor === 'number' && floor >= 0 && Number.isFinite(floor))) throw new CircuitryError(`hierarchical search: floor must be a non-negative number, got ${String(floor)}`);
  const unit = opts.unit ?? 'sublayer';
  if (unit !== 'sublayer' && unit !== 'block') throw new CircuitryError(`hierarchical search: unit must be sublayer or block, got '${String(unit)}'`);
  const finest = opts.finest ?? 'both';
  if (finest !== 'heads' && finest !== 'neurons' && finest !== 'both') throw new CircuitryError(`hierarchical search: finest must be heads, neurons or both, got '${String(finest)}'`);
  const maxKeep = opts.maxKeep ?? Infinity;
  if (!(maxKeep >= 1)) throw new CircuitryError(`hierarchical search: maxKeep must be at least 1, got ${String(opts.maxKeep)}`);
  const cfg = patcher.engine.model.cfg;
  const { nLayers: L, nHeads: H, dMlp } = cfg;
  const hasMlp = !cfg.attnOnly;
  const P = seqLenOf(patcher);
  if (opts.positionLabels && opts.positionLabels.length !== P) throw new CircuitryError(`hierarchical search: ${opts.positionLabels.length} position labels for prompts of ${P} tokens`);
  const span = patcher.fullyPatchedMetric - patcher.baseMetric;

  const levels: HierarchicalLevel[] = [];
  // progress runs 0..total once per level (each level's size is known only after the previous one)
  const run = (level: HierarchicalLevel['level'], sites: readonly Site[]): LevelComponent[] => {
    const ev = evaluateSites(patcher, sites, opts);
    const comps = sites.map((s, i) => {
      const m = ev.mean[i];
      const delta = m - patcher.baseMetric;
      return { name: s.name, metric: m, delta, recovery: recovery(m, patcher.cleanMetric, patcher.corruptedMetric), effect: span === 0 ? NaN : delta / span, kept: false };
    });
    const ranked = comps
      .map((c, i) => ({ c, i }))
      .filter(({ c }) => Math.abs(c.effect) >= floor)
      .sort((a, b) => Math.abs(b.c.effect) - Math.abs(a.c.effect) || a.i - b.i)
      .slice(0, maxKeep === Infinity ? undefined : maxKeep);
    const keep = new Set(ranked.map((r) => r.i));
    const out = comps.map((c, i) => ({ ...c, kept: keep.has(i) }));
    levels.push({ level, components: out, forwardPasses: ev.forwardPasses, cachePasses: ev.cachePasses });
    return out;
  };

  // level 1: layers
  type Coarse = { name: string; layer: number; attn: boolean; mlp: boolean };
  const coarse: Coarse[] = [];
  for (let l = 0; l < L; l++) {
    if (unit === 'block') coarse.push({ name: `L${l}`, layer: l, attn: true, mlp: hasMlp });
    else {
      coarse.push({ name: `a${l}`, layer: l, attn: true, mlp: false });
      if (hasMlp) coarse.push({ name: `m${l}`, layer: l, attn: false, mlp: true });
    }
  }
  const partsAt = (c: Coarse, pos: number | null) => [
    ...(c.attn ? [{ hook: blockHook(c.layer, 'hook_attn_out'), select: [pos, null] }] : []),
    ...(c.mlp ? [{ hook: blockHook(c.layer, 'hook_mlp_out'), select: [pos, null] }] : []),
  ];
  const l1 = run('layers', coarse.map((c) => ({ name: c.name, parts: partsAt(c, null) })));

  // level 2: positions within the kept layers
  const keptCoarse = coarse.filter((_, i) => l1[i].kept);
  const fine: { c: Coarse; pos: number }[] = keptCoarse.flatMap((c) => Array.from({ length: P }, (_, pos) => ({ c, pos })));
  const l2 = run('positions', fine.map(({ c, pos }) => ({ name: `${c.name}@${pos}`, parts: partsAt(c, pos) })));

  // level 3: heads and neurons within the kept (layer, position)s
  const finestSites: Site[] = [];
  fine.forEach(({ c, pos }, i) => {
    if (!l2[i].kept) return;
    if (c.attn && finest !== 'neurons') {
      for (let h = 0; h < H; h++) finestSites.push({ name: `a${c.layer}.h${h}@${pos}`, parts: [{ hook: blockHook(c.layer, 'attn.hook_z'), select: [pos, h, null] }] });
    }
    if (c.mlp && finest !== 'heads') {
      for (let u = 0; u < dMlp; u++) finestSites.push({ name: `m${c.layer}.n${u}@${pos}`, parts: [{ hook: blockHook(c.layer, 'mlp.hook_post'), select: [pos, u] }] });
    }
  });
  const l3 = run('components', finestSites);

  const kept = l3.filter((c) => c.kept).sort((a, b) => Math.abs(b.effect) - Math.abs(a.effect) || a.name.localeCompare(b.name));
  const forwardPasses = levels.reduce((s, l) => s + l.forwardPasses, 0);
  const cachePasses = levels.reduce((s, l) => s + l.cachePasses, 0);
  const fullSweep = fullSweepCost(patcher, finest, opts);
  return {
    direction: patcher.direction,
    metric: patcher.metric,
    clean: patcher.cleanMetric,
    corrupted: patcher.corruptedMetric,
    floor,
    unit,
    levels,
    kept,
    evaluated: levels.reduce((s, l) => s + l.components.length, 0),
    forwardPasses,
    cachePasses,
    fullSweep,
    passFraction: (forwardPasses + cachePasses) / (fullSweep.forwardPasses + fullSweep.cachePasses),
    patchedFraction: levels.reduce((s, l) => s + l.components.length, 0) / fullSweep.components,
  };
}

/** The finest sites of the whole model: every head and every neuron at every position. */
export function finestSites(patcher: Patcher, finest: 'heads' | 'neurons' | 'both' = 'both'): Site[] {
  const cfg = patcher.engine.model.cfg;
  const P = seqLenOf(patcher);
  const out: Site[] = [];
  for (let l = 0; l < cfg.nLayers; l++) {
    for (let pos = 0; pos < P; pos++) {
      if (finest !== 'neurons') for (let h = 0; h < cfg.nHeads; h++) out.push({ name: `a${l}.h${h}@${pos}`, parts: [{ hook: blockHook(l, 'attn.hook_z'), select: [pos, h, null] }] });
      if (finest !== 'heads' && !cfg.attnOnly) for (let u = 0; u < cfg.dMlp; u++) out.push({ name: `m${l}.n${u}@${pos}`, parts: [{ hook: blockHook(l, 'mlp.hook_post'), select: [pos, u] }] });
    }
  }
  return out;
}

/**
 * What the full sweep of the finest sites costs with the same stacking (passes of up to
 * stackSize copies per chunk of prompts, plus one unpatched pass per chunk for the values).
 */
function fullSweepCost(patcher: Patcher, finest: 'heads' | 'neurons' | 'both', opts: SiteEvaluationOptions): HierarchicalResult['fullSweep'] {
  const cfg = patcher.engine.model.cfg;
  const P = seqLenOf(patcher);
  const perPos = (finest !== 'neurons' ? cfg.nHeads : 0) + (finest !== 'heads' && !cfg.attnOnly ? cfg.dMlp : 0);
  const components = cfg.nLayers * P * perPos;
  let forwardPasses = 0;
  let cachePasses = 0;
  for (const c of chunksOf(patcher)) {
    forwardPasses += Math.ceil(components / stackSize(cfg, c.size, P, opts));
    cachePasses += patcher.ablation === 'zero' ? 0 : 1;
  }
  return { components, forwardPasses, cachePasses };
}
