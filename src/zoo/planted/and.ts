import { registerZooModel } from '../index.js';
import type { ZooDataset, ZooModel } from '../types.js';
import { PLANTED_SHAPE, PlantedBuilder, PlantedRng, checkDatasetOptions } from './common.js';
import { ANIMAL_IDS, BOS, COLOR_IDS, NO, WORD_IDS, YES, YES_NO_VOCAB, isColor } from './words.js';

/**
 * planted-and: a serial AND chain, head -> MLP -> head, every link necessary.
 *
 *   a0.h2  previous-token head: at each position copies MARK (+1 colour, -1 otherwise) of the
 *          previous token into S1
 *   m0     one unit: GELU(5·S1 + 5·MARK - 5) is ~5 when both the previous and the current word
 *          are colours and ~0 otherwise; writes FLAG = +1 (both) / -1 (not both)
 *   a1.h1  attends from every position to position 2 and copies FLAG into ANS
 *   logits yes reads +ANS, no reads -ANS
 *
 * Task `both-colors`: [BOS, w1, w2, f1..f5] -> yes iff w1 and w2 are both colours. Clean: two
 * colours; corrupted: both replaced by animals (fillers unchanged, random words). Answer yes,
 * wrong no; the corrupted prompt's logit difference is as negative as the clean one is positive.
 *
 * Ground truth: w1's mark into the head, the head's S1 into the MLP, w2's mark straight into the
 * MLP, the MLP's FLAG into the last head's value, and its output. Patching any one of them
 * turns the AND false and flips the answer.
 */

const TASK = 'both-colors';
const FILLERS = 5;
const PREV_HEAD = 2; // a0.h2
const MOVER = 1; // a1.h1

export const AND_GROUND_TRUTH = [
  `input->a0.h${PREV_HEAD}<v>`,
  `a0.h${PREV_HEAD}->m0`,
  'input->m0',
  `m0->a1.h${MOVER}<v>`,
  `a1.h${MOVER}->logits`,
] as const;

function build() {
  const b = new PlantedBuilder({ ...PLANTED_SHAPE, vocab: YES_NO_VOCAB });
  const V = YES_NO_VOCAB.length;
  const TOK = b.features('tok', V);
  const [MARK] = b.features('mark', 1);
  const [S1] = b.features('s1', 1);
  const [FLAG] = b.features('flag', 1);
  const [ANS] = b.features('ans', 1);
  b.allocJunk(4);
  for (let t = 0; t < V; t++) {
    b.embed(t, TOK[t], 1);
    b.embed(t, MARK, isColor(t) ? 1 : -1);
  }
  const { nCtx } = PLANTED_SHAPE;

  // a0.h2: previous-token head moving the mark
  for (let p = 1; p < nCtx; p++) b.match(0, PREV_HEAD, p - 1, b.POS[p], b.POS[p - 1], 20);
  b.read(0, PREV_HEAD, 'v', 0, MARK, 1);
  b.write(0, PREV_HEAD, 0, S1, 1);

  // m0: AND of the previous and the current mark, written as FLAG = ±1
  const unit = b.freeUnit(0);
  b.mlpRead(0, unit, S1, 5);
  b.mlpRead(0, unit, MARK, 5);
  b.mlpBias(0, unit, -5);
  b.mlpWrite(0, unit, FLAG, 2 / 5);
  b.mlpOutBias(0, FLAG, -1);

  // a1.h1: moves position 2's FLAG to every later position
  b.keyBonus(1, MOVER, 0, b.POS[2], 20);
  b.read(1, MOVER, 'v', 0, FLAG, 1);
  b.write(1, MOVER, 0, ANS, 1);

  b.unembed(YES, ANS, 4);
  b.unembed(NO, ANS, -4);

  const rng = new PlantedRng(202);
  b.decoyHead(0, 0, 'recent', rng);
  b.decoyHead(0, 1, 'bos', rng);
  b.decoyHead(0, 3, 'self', rng);
  b.decoyUnits(0, 12, rng);
  b.decoyHead(1, 0, 'self', rng);
  b.decoyHead(1, 2, 'prev', rng);
  b.decoyHead(1, 3, 'bos', rng);
  b.decoyUnits(1, 12, rng);
  return b.build();
}

function dataset(task: string, opts: { n: number; seed: number }): ZooDataset {
  checkDatasetOptions('planted-and', task, [TASK], opts);
  const rng = new PlantedRng(opts.seed);
  const out: ZooDataset = { clean: [], corrupted: [], answers: [], wrongs: [] };
  for (let i = 0; i < opts.n; i++) {
    const colors = [rng.pick(COLOR_IDS), rng.pick(COLOR_IDS)];
    const animals = [rng.pick(ANIMAL_IDS), rng.pick(ANIMAL_IDS)];
    const fillers = Array.from({ length: FILLERS }, () => rng.pick(WORD_IDS));
    out.clean.push([BOS, ...colors, ...fillers]);
    out.corrupted.push([BOS, ...animals, ...fillers]);
    out.answers.push([YES]);
    out.wrongs.push([NO]);
  }
  return out;
}

export const plantedAnd: ZooModel = {
  name: 'planted-and',
  describe: 'planted circuit: AND chain a0.h2 -> m0 -> a1.h1, every link necessary ("are the first two words colours?"); 2 layers, 4 heads, d 64',
  kind: 'planted',
  vocab: YES_NO_VOCAB,
  tasks: [TASK],
  build,
  groundTruth: { [TASK]: AND_GROUND_TRUTH },
  dataset,
};

registerZooModel(plantedAnd);
