import { registerZooModel } from '../index.js';
import type { ZooDataset, ZooModel } from '../types.js';
import { PLANTED_SHAPE, PlantedBuilder, PlantedRng, checkDatasetOptions } from './common.js';

/**
 * planted-negative: a positive copying head (a0.h3) and a copy-suppression head (a1.h1) that
 * writes against the answer.
 *
 *   a0.h3  attends to position 1 and copies its token into OUT[token] (+1)
 *   a1.h1  query: OUT (the token the model is about to predict); key: the token at each
 *          position (BOS when nothing matches) -> attends to where that token occurs and
 *          writes -0.4·OUT[token]: it suppresses the prediction it sees
 *   logits read OUT (×8): net +0.6·8 for the answer
 *
 * Task `recall-first`: [BOS, x, f1..f6] -> x. Corrupted: x replaced by y (fillers unchanged,
 * distinct from x and y). Answer x, wrong y.
 *
 * Ground truth: both heads' value inputs and outputs, the positive head's output into the
 * negative head's query (copy suppression reads the prediction) and the token input to the
 * negative head's key. The negative head's direct effect on the logit difference is negative:
 * patching its output to the corrupted run raises the logit difference.
 */

const TASK = 'recall-first';
const CONTENT = 14;
const FILLERS = 6;
const VOCAB = ['<bos>', ...Array.from({ length: CONTENT }, (_, i) => `w${i}`)];
const BOS = 0;
const POSITIVE = 3; // a0.h3
const NEGATIVE = 1; // a1.h1
// The copy-suppression attention stays out of saturation (~90% on the match) so that
// gradient-based attribution sees its query and key edges.
const MATCH_SCORE = 8;
const FALLBACK_SCORE = 5.5;

/** What the negative head writes per unit the positive head writes. */
export const NEGATIVE_STRENGTH = 0.4;

export const NEGATIVE_GROUND_TRUTH = [
  `input->a0.h${POSITIVE}<v>`,
  `a0.h${POSITIVE}->logits`,
  `a0.h${POSITIVE}->a1.h${NEGATIVE}<q>`,
  `input->a1.h${NEGATIVE}<k>`,
  `input->a1.h${NEGATIVE}<v>`,
  `a1.h${NEGATIVE}->logits`,
] as const;

function build() {
  const b = new PlantedBuilder({ ...PLANTED_SHAPE, vocab: VOCAB });
  const V = VOCAB.length;
  const TOK = b.features('tok', V);
  const OUT = b.features('out', V);
  b.allocJunk(4);
  for (let t = 0; t < V; t++) b.embed(t, TOK[t], 1);

  // a0.h3: copy the token at position 1
  b.keyBonus(0, POSITIVE, b.dHead - 1, b.POS[1], 20);
  for (let t = 1; t < V; t++) {
    b.read(0, POSITIVE, 'v', t - 1, TOK[t], 1);
    b.write(0, POSITIVE, t - 1, OUT[t], 1);
  }

  // a1.h1: copy suppression
  for (let t = 1; t < V; t++) {
    b.match(1, NEGATIVE, t - 1, OUT[t], TOK[t], MATCH_SCORE);
    b.read(1, NEGATIVE, 'v', t - 1, TOK[t], 1);
    b.write(1, NEGATIVE, t - 1, OUT[t], -NEGATIVE_STRENGTH);
  }
  b.keyBonus(1, NEGATIVE, b.dHead - 1, b.POS[0], FALLBACK_SCORE);

  for (let t = 0; t < V; t++) b.unembed(t, OUT[t], 8);

  const rng = new PlantedRng(404);
  b.decoyHead(0, 0, 'self', rng);
  b.decoyHead(0, 1, 'prev', rng);
  b.decoyHead(0, 2, 'bos', rng);
  b.decoyUnits(0, 12, rng);
  b.decoyHead(1, 0, 'recent', rng);
  b.decoyHead(1, 2, 'bos', rng);
  b.decoyHead(1, 3, 'self', rng);
  b.decoyUnits(1, 12, rng);
  return b.build();
}

function dataset(task: string, opts: { n: number; seed: number }): ZooDataset {
  checkDatasetOptions('planted-negative', task, [TASK], opts);
  const rng = new PlantedRng(opts.seed);
  const pool = Array.from({ length: CONTENT }, (_, i) => i + 1);
  const out: ZooDataset = { clean: [], corrupted: [], answers: [], wrongs: [] };
  for (let i = 0; i < opts.n; i++) {
    const [x, y, ...fillers] = rng.sample(pool, 2 + FILLERS);
    out.clean.push([BOS, x, ...fillers]);
    out.corrupted.push([BOS, y, ...fillers]);
    out.answers.push([x]);
    out.wrongs.push([y]);
  }
  return out;
}

export const plantedNegative: ZooModel = {
  name: 'planted-negative',
  describe: 'planted circuit: copying head a0.h3 and a copy-suppression head a1.h1 writing against the answer ("recall the first word"); 2 layers, 4 heads, d 64',
  kind: 'planted',
  vocab: VOCAB,
  tasks: [TASK],
  build,
  groundTruth: { [TASK]: NEGATIVE_GROUND_TRUTH },
  dataset,
};

registerZooModel(plantedNegative);
