import { registerZooModel } from '../index.js';
import type { ZooDataset, ZooModel } from '../types.js';
import { PLANTED_SHAPE, PlantedBuilder, PlantedRng, checkDatasetOptions } from './common.js';

/**
 * planted-induction: a previous-token head (a0.h1) feeding an induction head (a1.h2) through
 * K-composition.
 *
 *   a0.h1  attends p -> p-1 by position; OV copies the token there into PREV[token]
 *   a1.h2  query: the current token; key: PREV (what preceded each position) -> attends to the
 *          position right after the earlier occurrence of the current token (BOS when there is
 *          none); OV copies that token into OUT[token]; the unembedding reads OUT
 *
 * Task `induction` (as src/tasks' generator, L = 6): clean [BOS, A1..A6, A1..A5] -> A6;
 * corrupted [BOS, B1..B6, A1..A5] with B disjoint from A; wrong answer B6.
 *
 * Ground truth: the previous-token head's value input (which token precedes), its output into
 * the induction head's key, the induction head's value input (the token it copies) and its
 * output. The query (the current token) and every positional q/k input are identical in the
 * clean and corrupted runs, so those edges carry no effect and are not in the ground truth.
 */

const SEQ = 6;
const CONTENT = 14;
const VOCAB = ['<bos>', ...Array.from({ length: CONTENT }, (_, i) => `t${i}`)];
const BOS = 0;
const TASK = 'induction';
const PREV_HEAD = 1; // a0.h1
const IND_HEAD = 2; // a1.h2
// Content-dependent attention is kept out of saturation (~92% on the match, ~96% on BOS without
// one) so that gradient-based attribution (EAP) sees the key edges, not just real patching.
const MATCH_SCORE = 8;
const FALLBACK_SCORE = 5.5;

export const INDUCTION_GROUND_TRUTH = [
  `input->a0.h${PREV_HEAD}<v>`,
  `a0.h${PREV_HEAD}->a1.h${IND_HEAD}<k>`,
  `input->a1.h${IND_HEAD}<v>`,
  `a1.h${IND_HEAD}->logits`,
] as const;

function build() {
  const b = new PlantedBuilder({ ...PLANTED_SHAPE, vocab: VOCAB });
  const V = VOCAB.length;
  const TOK = b.features('tok', V);
  const PREV = b.features('prev', V);
  const OUT = b.features('out', V);
  b.allocJunk(4);
  for (let t = 0; t < V; t++) b.embed(t, TOK[t], 1);
  const { nCtx } = PLANTED_SHAPE;

  // a0.h1: previous-token head
  for (let p = 1; p < nCtx; p++) b.match(0, PREV_HEAD, p - 1, b.POS[p], b.POS[p - 1], 20);
  for (let t = 0; t < V; t++) {
    b.read(0, PREV_HEAD, 'v', t, TOK[t], 1);
    b.write(0, PREV_HEAD, t, PREV[t], 1);
  }

  // a1.h2: induction head (content tokens only; BOS as the no-match fallback)
  for (let t = 1; t < V; t++) {
    b.match(1, IND_HEAD, t - 1, TOK[t], PREV[t], MATCH_SCORE);
    b.read(1, IND_HEAD, 'v', t - 1, TOK[t], 1);
    b.write(1, IND_HEAD, t - 1, OUT[t], 1);
  }
  b.keyBonus(1, IND_HEAD, b.dHead - 1, b.POS[0], FALLBACK_SCORE);

  for (let t = 0; t < V; t++) b.unembed(t, OUT[t], 8);

  const rng = new PlantedRng(101);
  b.decoyHead(0, 0, 'bos', rng);
  b.decoyHead(0, 2, 'self', rng);
  b.decoyHead(0, 3, 'recent', rng);
  b.decoyUnits(0, 12, rng);
  b.decoyHead(1, 0, 'prev', rng);
  b.decoyHead(1, 1, 'bos', rng);
  b.decoyHead(1, 3, 'recent', rng);
  b.decoyUnits(1, 12, rng);
  return b.build();
}

function dataset(task: string, opts: { n: number; seed: number }): ZooDataset {
  checkDatasetOptions('planted-induction', task, [TASK], opts);
  const rng = new PlantedRng(opts.seed);
  const pool = Array.from({ length: CONTENT }, (_, i) => i + 1);
  const out: ZooDataset = { clean: [], corrupted: [], answers: [], wrongs: [] };
  for (let i = 0; i < opts.n; i++) {
    const a = rng.sample(pool, SEQ);
    const b = rng.sample(
      pool.filter((t) => !a.includes(t)),
      SEQ,
    );
    const second = a.slice(0, SEQ - 1);
    out.clean.push([BOS, ...a, ...second]);
    out.corrupted.push([BOS, ...b, ...second]);
    out.answers.push([a[SEQ - 1]]);
    out.wrongs.push([b[SEQ - 1]]);
  }
  return out;
}

export const plantedInduction: ZooModel = {
  name: 'planted-induction',
  describe: 'planted circuit: previous-token head a0.h1 -> induction head a1.h2 (K-composition); 2 layers, 4 heads, d 64',
  kind: 'planted',
  vocab: VOCAB,
  tasks: [TASK],
  build,
  groundTruth: { [TASK]: INDUCTION_GROUND_TRUTH },
  dataset,
};

registerZooModel(plantedInduction);
