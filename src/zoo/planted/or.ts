import { registerZooModel } from '../index.js';
import type { ZooDataset, ZooModel } from '../types.js';
import { PLANTED_SHAPE, PlantedBuilder, PlantedRng, checkDatasetOptions } from './common.js';
import { ANIMAL_IDS, BOS, COLOR_IDS, NO, WORD_IDS, YES, YES_NO_VOCAB, isColor } from './words.js';

/**
 * planted-or: a redundant OR pair (a0.h1, a0.h3) gated by m0, with a backup head (a1.h2).
 *
 *   a0.h1, a0.h3  both attend to position 1 and copy its mark: SIG_i = 1 for a colour, 0
 *                 otherwise (SIGN_i = 1 - SIG_i keeps the residual norm fixed)
 *   m0            a leaky OR of s = SIG_1 + SIG_2: ANS = -1, +0.7, +1 for s = 0, 1, 2
 *                 (monotone: steep up to s = 0.8, then a gentle slope)
 *   logits        yes reads +ANS, no reads -ANS
 *   a1.h2         the backup: its query reads s and sends it to BOS while s >= 1; when both
 *                 primaries are gone it attends to position 1 and writes +0.6·ANS for a colour
 *
 * Task `first-color`: [BOS, w, f1..f6] -> yes iff w is a colour. Clean w: a colour; corrupted
 * w: an animal (fillers unchanged). Answer yes, wrong no.
 *
 * Each primary is sufficient and neither is necessary: removing one loses 15% of the logit
 * difference (the OR is leaky on purpose, so the loss is small but clearly measurable),
 * removing both loses all of it when only their edges into m0 are patched, and 70% when the
 * heads are ablated as nodes, because then the backup head sees s = 0 and takes over. The
 * backup writes nothing in either unpatched run (clean: it looks at BOS; corrupted: it looks at
 * an animal, whose mark is 0), so every edge of it has zero single-edge effect under noising
 * and it is not in the ground truth. Denoising sees it: in the corrupted run it is active, so
 * restoring its value input alone recovers 30%, and restoring either primary alone recovers
 * 85% — the shape where noising and denoising disagree.
 */

const TASK = 'first-color';
const FILLERS = 6;
const P1 = 1; // a0.h1
const P2 = 3; // a0.h3
const BACKUP = 2; // a1.h2

export const OR_GROUND_TRUTH = [
  `input->a0.h${P1}<v>`,
  `input->a0.h${P2}<v>`,
  `a0.h${P1}->m0`,
  `a0.h${P2}->m0`,
  'm0->logits',
] as const;

/** The OR gate's output for s = 1 (one primary present), relative to ±1 for s = 2 and 0. */
export const OR_SINGLE = 0.7;
/** What the backup head writes (in ANS units) when it takes over. */
export const OR_BACKUP = 0.6;

function build() {
  const b = new PlantedBuilder({ ...PLANTED_SHAPE, vocab: YES_NO_VOCAB });
  const V = YES_NO_VOCAB.length;
  const TOK = b.features('tok', V);
  const [MARK] = b.features('mark', 1);
  const [NEU] = b.features('neutral', 1);
  const SIG = b.features('sig', 2);
  const SIGN = b.features('sig-neutral', 2);
  const [ANS] = b.features('ans', 1);
  b.allocJunk(4);
  for (let t = 0; t < V; t++) {
    b.embed(t, TOK[t], 1);
    b.embed(t, isColor(t) ? MARK : NEU, 1);
  }

  // the primaries: attend to position 1, copy its mark
  [P1, P2].forEach((h, i) => {
    b.keyBonus(0, h, 0, b.POS[1], 20);
    b.read(0, h, 'v', 0, MARK, 1);
    b.read(0, h, 'v', 1, NEU, 1);
    b.write(0, h, 0, SIG[i], 1);
    b.write(0, h, 1, SIGN[i], 1);
  });

  // m0: leaky OR, monotone and piecewise linear in s with kinks at 0.2 and 0.8 (r = GELU ~ relu):
  //   ANS = -1 + a·r(s - 0.2) - c·r(s - 0.8), so ANS(0) = -1, ANS(1) = OR_SINGLE, ANS(2) = 1,
  // and between s = 0.8 and 2 the slope is 1 - OR_SINGLE (gradients at the clean point see it).
  const k = 20;
  const [s0, s1] = [0.2, 0.8];
  const slope = 1 - OR_SINGLE;
  const a = (OR_SINGLE + 1 - slope * (1 - s1)) / (s1 - s0);
  const c = a - slope;
  for (const [kink, w] of [[s0, a], [s1, -c]]) {
    const u = b.freeUnit(0);
    for (const f of SIG) b.mlpRead(0, u, f, k);
    b.mlpBias(0, u, -kink * k);
    b.mlpWrite(0, u, ANS, w / k);
  }
  b.mlpOutBias(0, ANS, -1);

  // a1.h2: backup. Score at BOS 5 + 30·s, at position 1 a flat 20, elsewhere 0.
  b.keyBonus(1, BACKUP, 0, b.POS[0], 5);
  for (const f of SIG) b.read(1, BACKUP, 'q', 0, f, 30 * Math.sqrt(b.dHead));
  b.keyBonus(1, BACKUP, 1, b.POS[1], 20);
  b.read(1, BACKUP, 'v', 0, MARK, 1);
  b.write(1, BACKUP, 0, ANS, OR_BACKUP);

  b.unembed(YES, ANS, 4);
  b.unembed(NO, ANS, -4);

  const rng = new PlantedRng(303);
  b.decoyHead(0, 0, 'prev', rng);
  b.decoyHead(0, 2, 'recent', rng);
  b.decoyUnits(0, 12, rng);
  b.decoyHead(1, 0, 'bos', rng);
  b.decoyHead(1, 1, 'self', rng);
  b.decoyHead(1, 3, 'prev', rng);
  b.decoyUnits(1, 12, rng);
  return b.build();
}

function dataset(task: string, opts: { n: number; seed: number }): ZooDataset {
  checkDatasetOptions('planted-or', task, [TASK], opts);
  const rng = new PlantedRng(opts.seed);
  const out: ZooDataset = { clean: [], corrupted: [], answers: [], wrongs: [] };
  for (let i = 0; i < opts.n; i++) {
    const fillers = Array.from({ length: FILLERS }, () => rng.pick(WORD_IDS));
    out.clean.push([BOS, rng.pick(COLOR_IDS), ...fillers]);
    out.corrupted.push([BOS, rng.pick(ANIMAL_IDS), ...fillers]);
    out.answers.push([YES]);
    out.wrongs.push([NO]);
  }
  return out;
}

export const plantedOr: ZooModel = {
  name: 'planted-or',
  describe: 'planted circuit: redundant OR pair a0.h1 | a0.h3 -> m0, backup head a1.h2 ("is the first word a colour?"); 2 layers, 4 heads, d 64',
  kind: 'planted',
  vocab: YES_NO_VOCAB,
  tasks: [TASK],
  build,
  groundTruth: { [TASK]: OR_GROUND_TRUTH },
  dataset,
};

registerZooModel(plantedOr);
