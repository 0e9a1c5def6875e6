import { readFileSync } from 'node:fs';
import { CircuitGraph } from '../../src/graph/graph.js';
import type { CircuitFile, EdgeEvidence, Example, Sweep } from '../../src/graph/circuit-types.js';
import { TINY } from './fixtures.js';

/**
 * Synthetic circuit files for the report tests and the README screenshots: seeded, so every run
 * builds the same bytes. `plantedCircuit` imitates a real pipeline run (GPT-2-small shape, an
 * IOI-like circuit, every panel filled); `randomCircuit` is the large case; `xssCircuit` puts
 * hostile strings everywhere the page shows text.
 */

/** mulberry32: a small, fast, seeded PRNG returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal draws from a uniform PRNG (Box–Muller). */
export function gaussian(rand: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

function baseFile(nLayers: number, nHeads: number): CircuitFile {
  return { cfg: { n_layers: nLayers, n_heads: nHeads, d_model: 64 * nHeads, parallel_attn_mlp: false }, nodes: {}, edges: {} };
}

/**
 * Every edge of an L-layer, H-head graph with a random score (seeded); the `inGraph` edges with
 * the largest |score| are in the circuit. GPT-2 small: randomCircuit(12, 12) has 32,491 edges.
 */
export function randomCircuit(nLayers: number, nHeads: number, seed = 1, inGraph = 400): CircuitFile {
  const graph = new CircuitGraph({ nLayers, nHeads, hasMlp: true, qkv: true });
  const rand = prng(seed);
  const normal = gaussian(rand);
  const file = baseFile(nLayers, nHeads);
  const scores = graph.edges.map(() => normal() * Math.pow(rand(), 3) * 0.1);
  const cut = [...scores].map(Math.abs).sort((a, b) => b - a)[Math.min(inGraph, scores.length) - 1];
  const evidence: Record<string, EdgeEvidence> = {};
  graph.edges.forEach((e, i) => {
    file.edges[e.name] = { score: scores[i], in_graph: Math.abs(scores[i]) >= cut };
    if (i % 7 === 0) evidence[e.name] = { attribution: scores[i], verified: scores[i] * (0.8 + 0.4 * rand()), acdc_tau: Math.abs(scores[i]) * (0.5 + rand()) };
  });
  for (const n of graph.nodes) file.nodes[n] = { in_graph: false };
  file.meta = { task: 'random', method: 'eap', metric: 'logit-diff', model: { name: `random-${nLayers}x${nHeads}` }, edge_evidence: evidence, acdc: { tau: cut, order: 'acdc', metric: 'kl' } };
  return file;
}

type Role = { heads: string[]; strength: number };

/** IOI-style roles on GPT-2 small (Wang et al. 2022), used to plant a believable circuit. */
const ROLES = {
  dup: { heads: ['a0.h1', 'a0.h10', 'a3.h0'], strength: 0.35 },
  prev: { heads: ['a2.h2', 'a4.h11'], strength: 0.3 },
  induction: { heads: ['a5.h5', 'a5.h8', 'a5.h9', 'a6.h9'], strength: 0.45 },
  sinhib: { heads: ['a7.h3', 'a7.h9', 'a8.h6', 'a8.h10'], strength: 0.6 },
  movers: { heads: ['a9.h6', 'a9.h9', 'a10.h0'], strength: 0.9 },
  negMovers: { heads: ['a10.h7', 'a11.h10'], strength: -0.55 },
  backup: { heads: ['a10.h10', 'a10.h6', 'a11.h2'], strength: 0.25 },
} satisfies Record<string, Role>;

const GT_ROLES = {
  early: { heads: ['a5.h1', 'a5.h5', 'a6.h1', 'a6.h9'], strength: 0.35 },
  mid: { heads: ['a7.h10', 'a8.h8', 'a8.h11', 'a9.h1'], strength: 0.6 },
} satisfies Record<string, Role>;

interface Planted {
  edges: Map<string, number>;
  heads: string[];
}

function plantIoi(variant: 'pipeline' | 'eap'): Planted {
  const e = new Map<string, number>();
  const add = (name: string, s: number): void => {
    e.set(name, (e.get(name) ?? 0) + s);
  };
  const R = ROLES;
  for (const h of R.dup.heads) {
    add(`input->${h}<q>`, 0.3);
    add(`input->${h}<k>`, 0.25);
    add(`${h.startsWith('a0.') ? 'input' : 'm0'}->${h}<v>`, 0.2);
  }
  for (const h of R.prev.heads) {
    add(`input->${h}<k>`, 0.2);
    add(`m0->${h}<v>`, 0.25);
  }
  add('input->m0', 0.5);
  for (const h of R.induction.heads) {
    for (const p of R.prev.heads) add(`${p}->${h}<k>`, 0.3);
    add(`m0->${h}<q>`, 0.18);
    add(`m0->${h}<v>`, 0.22);
  }
  for (const h of R.sinhib.heads) {
    for (const d of R.dup.heads) add(`${d}->${h}<v>`, 0.28);
    for (const i of R.induction.heads) add(`${i}->${h}<v>`, 0.26);
    add(`m0->${h}<k>`, 0.12);
  }
  for (const h of [...R.movers.heads, ...R.negMovers.heads, ...(variant === 'pipeline' ? R.backup.heads : [])]) {
    for (const s of R.sinhib.heads) add(`${s}->${h}<q>`, 0.35);
    add(`m0->${h}<k>`, 0.3);
    add(`m0->${h}<v>`, 0.4);
  }
  for (const h of R.movers.heads) add(`${h}->logits`, R.movers.strength);
  for (const h of R.negMovers.heads) add(`${h}->logits`, R.negMovers.strength);
  if (variant === 'pipeline') for (const h of R.backup.heads) add(`${h}->logits`, R.backup.strength);
  add('m11->logits', 0.15);
  add('a9.h9->m11', 0.12);
  return { edges: e, heads: Object.values(R).flatMap((r) => r.heads) };
}

function plantGreaterThan(): Planted {
  const e = new Map<string, number>();
  const { early, mid } = GT_ROLES;
  for (const h of early.heads) {
    e.set(`input->${h}<q>`, 0.2);
    e.set(`m0->${h}<v>`, 0.35);
    e.set(`m0->${h}<k>`, 0.2);
  }
  e.set('input->m0', 0.55);
  for (const h of mid.heads) {
    for (const s of early.heads) e.set(`${s}->${h}<v>`, 0.22);
    e.set(`m0->${h}<k>`, 0.18);
  }
  for (const l of [8, 9, 10, 11]) {
    for (const h of mid.heads) if (Number(h.slice(1, h.indexOf('.'))) < l) e.set(`${h}->m${l}`, 0.3);
    e.set(`m${l}->logits`, 0.45);
  }
  e.set('a9.h1->logits', 0.3);
  e.set('a9.h9->logits', 0.2);
  return { edges: e, heads: [...early.heads, ...mid.heads] };
}

const IOI_NAMES = [
  ['Mary', 'John'],
  ['Alice', 'Bob'],
  ['Sarah', 'Tom'],
  ['Kate', 'James'],
  ['Anna', 'Paul'],
  ['Laura', 'Mark'],
  ['Emma', 'David'],
  ['Lisa', 'Peter'],
];
const PLACES = ['store', 'park', 'office', 'garden', 'station', 'market', 'school', 'beach'];
const OBJECTS = ['drink', 'book', 'ring', 'letter', 'bag', 'key', 'ball', 'pen'];

function ioiExamples(): Example[] {
  return IOI_NAMES.map(([a, b], i) => {
    const clean = `When ${a} and ${b} went to the ${PLACES[i]}, ${b} gave a ${OBJECTS[i]} to`;
    const corrupted = `When Jessica and Michael went to the ${PLACES[i]}, Robert gave a ${OBJECTS[i]} to`;
    const tokens = clean.split(/(?=[ ,])/).map((t) => t);
    return { clean, corrupted, answer: ` ${a}`, wrong: ` ${b}`, clean_tokens: tokens };
  });
}

function gtExamples(): Example[] {
  return [17, 32, 45, 58, 64, 71, 83, 96].map((yy, i) => ({
    clean: `The ${['war', 'strike', 'reign', 'drought', 'siege', 'boom', 'trial', 'voyage'][i]} lasted from the year 17${yy} to the year 17`,
    corrupted: `The ${['war', 'strike', 'reign', 'drought', 'siege', 'boom', 'trial', 'voyage'][i]} lasted from the year 1701 to the year 17`,
    answer: `${yy + 1}…99`,
    wrong: `00…${yy}`,
  }));
}

function faithCurve(rand: () => number, steep: number): { points: { fraction: number; n_edges: number; faithfulness: number }[]; cpr: number; cmd: number } {
  const fractions = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1];
  const points = fractions.map((f) => {
    const x = Math.log10(f) + 3; // 0 … 3
    const base = 1 / (1 + Math.exp(-steep * (x - 1.1)));
    const bump = f === 1 ? 1 : Math.min(1.08, base * (1.02 + 0.05 * (rand() - 0.5)));
    return { fraction: f, n_edges: Math.round(f * 32491), faithfulness: Number(bump.toFixed(4)) };
  });
  let cpr = 0;
  let cmd = 0;
  for (let i = 1; i < points.length; i++) {
    const w = Math.log10(points[i].fraction) - Math.log10(points[i - 1].fraction);
    cpr += (w * (points[i].faithfulness + points[i - 1].faithfulness)) / 2;
    cmd += (w * (Math.abs(1 - points[i].faithfulness) + Math.abs(1 - points[i - 1].faithfulness))) / 2;
  }
  return { points, cpr: Number((cpr / 3).toFixed(4)), cmd: Number((cmd / 3).toFixed(4)) };
}

export interface PlantedOptions {
  task?: 'ioi' | 'greater-than';
  variant?: 'pipeline' | 'eap';
  seed?: number;
}

/** A believable pipeline run on a GPT-2-small-shaped graph: planted circuit, noise, every panel. */
export function plantedCircuit(opts: PlantedOptions = {}): CircuitFile {
  const task = opts.task ?? 'ioi';
  const variant = opts.variant ?? 'pipeline';
  const rand = prng(opts.seed ?? 7);
  const normal = gaussian(rand);
  const L = 12;
  const H = 12;
  const graph = new CircuitGraph({ nLayers: L, nHeads: H, hasMlp: true, qkv: true });
  const planted = task === 'ioi' ? plantIoi(variant) : plantGreaterThan();
  for (const name of planted.edges.keys()) if (!graph.hasEdge(name)) throw new Error(`fixture: planted edge ${name} is not in the graph`);
  const file = baseFile(L, H);
  const scores = new Map<string, number>();
  for (const e of graph.edges) {
    const p = planted.edges.get(e.name);
    const noise = normal() * 0.006 * Math.pow(rand(), 2);
    scores.set(e.name, p !== undefined ? p * (0.55 + 0.9 * rand()) + noise : noise);
  }
  // verify the top candidates, then ACDC over them at τ; a few edges survive every τ
  const tau = 0.03;
  const ranked = [...scores].sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
  const candidates = ranked.slice(0, variant === 'pipeline' ? 500 : 0);
  const evidence: Record<string, EdgeEvidence> = {};
  const inGraph = new Set<string>();
  candidates.forEach(([name, s], rank) => {
    const verified = s * (0.75 + 0.5 * rand()) + normal() * 0.004;
    const kept = rank < 3;
    const falls = Math.abs(verified) * (0.4 + 0.5 * rand());
    evidence[name] = { attribution: s, verified, acdc_tau: kept ? null : falls, acdc_delta: Math.abs(verified) * 0.8 };
    if (kept || falls > tau) inGraph.add(name);
  });
  if (variant === 'eap') for (const [name] of ranked.slice(0, 90)) inGraph.add(name);
  for (const e of graph.edges) file.edges[e.name] = { score: Number(scores.get(e.name)!.toPrecision(6)), in_graph: inGraph.has(e.name) };
  for (const n of graph.nodes) file.nodes[n] = { in_graph: false };
  for (const name of inGraph) {
    const [src, rest] = name.split('->');
    file.nodes[src].in_graph = true;
    file.nodes[rest.replace(/<[qkv]>$/, '')].in_graph = true;
  }
  const examples = task === 'ioi' ? ioiExamples() : gtExamples();
  const tokens = task === 'ioi' ? examples[0].clean_tokens! : ['The', ' war', ' lasted', ' from', ' the', ' year', ' 17', '32', ' to', ' the', ' year', ' 17'];
  const importantPos = task === 'ioi' ? [tokens.length - 5, tokens.length - 1] : [7, tokens.length - 1];
  const headSweep: number[][] = [];
  const plantedHeads = new Set(planted.heads);
  for (let l = 0; l < L; l++) {
    const row: number[] = [];
    for (let h = 0; h < H; h++) {
      const name = `a${l}.h${h}`;
      const sgn = task === 'ioi' && ROLES.negMovers.heads.includes(name) ? -1 : 1;
      row.push(Number(((plantedHeads.has(name) ? sgn * (0.12 + 0.35 * rand()) : 0) + normal() * 0.012).toFixed(4)));
    }
    headSweep.push(row);
  }
  const residSweep = Array.from({ length: L + 1 }, (_, l) =>
    tokens.map((_, p) => {
      const early = p === importantPos[0] ? Math.max(0, 1 - l / 8.5) : 0;
      const late = p === importantPos[1] ? Math.min(1, Math.max(0, (l - 6) / 3.5)) : 0;
      return Number((early + late + normal() * 0.015).toFixed(4));
    }),
  );
  const sweeps: Sweep[] = [
    { kind: 'heads', direction: 'denoise', metric: 'logit-diff', rows: Array.from({ length: L }, (_, l) => `L${l}`), cols: Array.from({ length: H }, (_, h) => `H${h}`), recovery: headSweep },
    {
      kind: 'resid',
      direction: 'denoise',
      metric: 'logit-diff',
      rows: Array.from({ length: L + 1 }, (_, l) => (l === L ? 'final' : `L${l}`)),
      cols: tokens.map((t, p) => `${t.trim() || '␣'} ${p}`),
      recovery: residSweep,
    },
  ];
  const curve = faithCurve(rand, task === 'ioi' ? 3.2 : 2.6);
  const clean = task === 'ioi' ? 3.274 : 0.812;
  const corrupted = task === 'ioi' ? -0.118 : 0.061;
  const normalized = variant === 'pipeline' ? 0.903 : 0.781;
  file.meta = {
    tool: { name: 'circuitry', version: '0.1.0' },
    created: '2025-05-14T09:31:07Z',
    backend: 'wasm',
    model: { name: 'gpt2', hash: 'sha256:248dfc3911869ec493c76e65bf2fcf7f615828b0254c12b473182f0f81d3a707', n_params: 124439808 },
    dataset: { name: task === 'ioi' ? 'ioi (abba + baba templates)' : 'greater-than (years)', hash: 'sha256:9c1e04b5a7', n_examples: 256, seq_len: tokens.length },
    task,
    metric: 'logit-diff',
    method: variant === 'pipeline' ? 'eap-ig → path patching → acdc' : 'eap (top 90 edges)',
    direction: 'denoise',
    config: { model: 'gpt2', task, metric: 'logit-diff', screen: { method: 'eap-ig', steps: 5 }, verify: { top_k: 500 }, prune: { method: 'acdc', tau, order: 'acdc' }, evaluate: { fractions: curve.points.map((p) => p.fraction) } },
    versions: { circuitry: '0.1.0', node: 'v20.19.1', '@tensorflow/tfjs': '4.22.0', '@tensorflow/tfjs-backend-wasm': '4.22.0' },
    timings: variant === 'pipeline' ? { load: 2.14, screen: 14.7, verify: 61.2, prune: 203.9, evaluate: 12.3, total: 294.3 } : { load: 2.1, screen: 3.9, evaluate: 11.8, total: 17.8 },
    metrics: { clean, corrupted, empty: corrupted - 0.19, circuit: corrupted + normalized * (clean - corrupted), normalized },
    edge_evidence: evidence,
    ...(variant === 'pipeline' ? { acdc: { tau, order: 'acdc', metric: 'logit-diff' } } : {}),
    faithfulness: curve,
    sweeps,
    examples,
  };
  return file;
}

export const XSS_STRINGS = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>'] as const;

/** A small circuit whose every displayed string carries the two XSS probes. */
export function xssCircuit(): CircuitFile {
  const file = randomCircuit(2, 4, 3, 40);
  const [a, b] = XSS_STRINGS;
  file.meta = {
    ...file.meta,
    task: `task ${a}`,
    model: { name: `model ${b}`, hash: a },
    dataset: { name: b, n_examples: 2 },
    versions: { [a]: b },
    timings: { [b]: 1.5 },
    config: { note: a, other: b, sep: 'line\u2028separator\u2029end' },
    sweeps: [{ kind: a, direction: 'noise', metric: b, rows: [a, b], cols: [b, a, 'x'], recovery: [[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]] }],
    examples: [
      { clean: `Prompt ${a} end`, corrupted: `Corrupt ${b} end`, answer: a, wrong: b, clean_tokens: [a, b, '</script><script>alert(2)</script>'] },
      { clean: `&amp; <!-- not a comment --> ]]> \u2028 ${b}`, corrupted: '', answer: b, wrong: a },
    ],
  };
  return file;
}

export const FIXTURE_DIR = TINY;

/**
 * A circuit file from the shared tiny-gpt2 reference data (2 layers, 4 heads, 110 edges): EAP
 * scores as attribution, exact single-edge patching as the verified effect, and from the four
 * KL ACDC runs the smallest τ at which each edge was removed (null when kept at all of them).
 * The saved circuit is the run at τ = 0.001.
 */
export function fixtureCircuit(): CircuitFile {
  const ref = JSON.parse(readFileSync(`${FIXTURE_DIR}/edges.json`, 'utf8')) as { edges: Record<string, { eap: number; exact_patch_delta: number }> };
  const taus = [0.0003, 0.001, 0.003, 0.01];
  const kept = taus.map((t) => new Set((JSON.parse(readFileSync(`${FIXTURE_DIR}/acdc/kl_tau${t}.json`, 'utf8')) as { kept_edges: string[] }).kept_edges));
  const file = baseFile(2, 4);
  const evidence: Record<string, EdgeEvidence> = {};
  for (const [name, e] of Object.entries(ref.edges)) {
    const fell = taus.findIndex((_, i) => !kept[i].has(name));
    file.edges[name] = { score: e.eap, in_graph: kept[1].has(name) };
    evidence[name] = { attribution: e.eap, verified: e.exact_patch_delta, acdc_tau: fell === -1 ? null : taus[fell] };
  }
  file.meta = { model: { name: 'tiny-gpt2' }, task: 'fixture', metric: 'kl', method: 'acdc', acdc: { tau: 0.001, order: 'auto-circuit', metric: 'kl' }, edge_evidence: evidence };
  return file;
}
