/**
 * Training and evaluation data for the zoo's trained model. Both come from the task generators
 * of src/tasks (IOI, greater-than, induction) on the zoo's word vocabulary, so the model is
 * trained on exactly the prompts that pipelines later give it, only from other seeds:
 *
 * - training draws generator seeds from TRAIN_SEED_BASE (1e9) upwards;
 * - evaluation (held out) uses seeds below it: 0, 1, 2, ... as pipelines and tests do.
 *
 * What is trained where (the loss is cross-entropy against a target distribution):
 * - IOI: every position of the text (its next token) and, ANSWER_WEIGHT times as strongly, the
 *   answer position (the last token), target the IO name;
 * - greater-than: likewise, the answer target uniform over the answer set (the years > YY);
 * - induction: every position of the repeated half, target the token that followed the same
 *   token in the first half (the last of them is the generator's answer position); the first
 *   half is random and not trained.
 *
 * Each generator call (one per task and step) starts its prompts with <bos> or not, at random, so
 * the model works with and without it.
 */
import * as tf from '@tensorflow/tfjs';
import { WordTokenizer } from '../src/model/tokenizer.js';
import type { Transformer } from '../src/model/transformer.js';
import type { TaskDataset } from '../src/tasks/dataset.js';
import { greaterThanDataset } from '../src/tasks/greater-than.js';
import { inductionDataset } from '../src/tasks/induction.js';
import { ioiDataset } from '../src/tasks/ioi.js';
import { Rng } from '../src/tasks/random.js';
import { ZOO_VOCAB } from '../src/zoo/vocab.js';

export const ZOO_TASKS = ['ioi', 'greater-than', 'induction'] as const;
export type ZooTask = (typeof ZOO_TASKS)[number];

/** Training seeds are TRAIN_SEED_BASE + k; held-out evaluation uses seeds below it. */
export const TRAIN_SEED_BASE = 1_000_000_000;

/** Centuries of the greater-than training prompts (evaluation uses the generator's default 17). */
export const GT_TRAIN_CENTURIES: readonly string[] = ['11', '12', '13', '14', '15', '16', '17', '18', '19'];

/**
 * IOI and greater-than are trained on the whole text (every next token) and, ANSWER_WEIGHT times
 * as strongly, on the answer at the last position.
 */
export const ANSWER_WEIGHT = 4;

/** Next-token targets at every position but the last, then the answer set at the last. */
function textTargets(tokens: readonly number[], answers: readonly number[]): TrainTarget[] {
  const targets: TrainTarget[] = [];
  for (let pos = 0; pos + 1 < tokens.length; pos++) targets.push({ pos, ids: [tokens[pos + 1]], weight: 1 });
  targets.push({ pos: tokens.length - 1, ids: answers, weight: ANSWER_WEIGHT });
  return targets;
}

/** Induction sequence lengths L in training (prompts 2L-1 tokens; the generator's default is 8). */
export const INDUCTION_TRAIN_LENGTHS = { min: 4, max: 12 } as const;

export interface TrainTarget {
  /** The position whose next-token prediction is trained. */
  readonly pos: number;
  /** Correct next tokens; the target distribution is uniform over them. */
  readonly ids: readonly number[];
  /** The position's weight within its task's loss. */
  readonly weight: number;
}

export interface TrainRow {
  readonly task: ZooTask;
  readonly tokens: readonly number[];
  readonly targets: readonly TrainTarget[];
}

let tokenizer: WordTokenizer | undefined;
/** The word tokenizer of the zoo vocabulary the model is trained on. */
export function zooTokenizer(): WordTokenizer {
  tokenizer ??= new WordTokenizer(ZOO_VOCAB);
  return tokenizer;
}

/** Held-out dataset of a task as pipelines generate it (generator defaults, the given seed). */
export function evalDataset(task: ZooTask, n: number, seed: number, bos: boolean): TaskDataset {
  if (seed >= TRAIN_SEED_BASE) throw new Error(`seed ${seed} is a training seed (>= ${TRAIN_SEED_BASE})`);
  const common = { n, seed, ...(bos ? { bos: '<bos>' } : {}) };
  const tok = zooTokenizer();
  switch (task) {
    case 'ioi':
      return ioiDataset(tok, common);
    case 'greater-than':
      return greaterThanDataset(tok, common);
    case 'induction':
      return inductionDataset(tok, common);
  }
}

/**
 * n training rows of a task from one generator seed (k >= 0 picks the seed TRAIN_SEED_BASE + k).
 * Options that vary (bos, century, sequence length) are drawn from the same seed.
 */
export function trainRows(task: ZooTask, n: number, k: number): TrainRow[] {
  const seed = TRAIN_SEED_BASE + k;
  const rng = new Rng(seed);
  const bos = rng.int(2) === 0 ? { bos: '<bos>' } : {};
  const tok = zooTokenizer();
  switch (task) {
    case 'ioi': {
      const ds = ioiDataset(tok, { n, seed, ...bos });
      return ds.clean.map((tokens, i) => ({ task, tokens, targets: textTargets(tokens, ds.answers[i]) }));
    }
    case 'greater-than': {
      // start years from 01, so the "01" corruption is a prompt the model has seen
      const ds = greaterThanDataset(tok, { n, seed, century: rng.pick(GT_TRAIN_CENTURIES), minYear: 1, ...bos });
      return ds.clean.map((tokens, i) => ({ task, tokens, targets: textTargets(tokens, ds.answers[i]) }));
    }
    case 'induction': {
      const { min, max } = INDUCTION_TRAIN_LENGTHS;
      const length = min + rng.int(max - min + 1);
      const ds = inductionDataset(tok, { n, seed, length, ...bos });
      // clean = [bos] A1..AL A1..A(L-1): position pos of the repeat predicts tokens[pos - L + 1]
      return ds.clean.map((tokens) => {
        const targets: TrainTarget[] = [];
        for (let pos = tokens.length - (length - 1); pos < tokens.length; pos++) targets.push({ pos, ids: [tokens[pos - length + 1]], weight: 1 });
        return { task, tokens, targets };
      });
    }
  }
}

export interface TaskEval {
  /** Fraction of clean prompts whose top-1 next token is in the answer set. */
  readonly accuracy: number;
  /** Mean log Σp(answers) − log Σp(wrongs) at the last position (DESIGN's logit-diff metric). */
  readonly cleanLogitDiff: number;
  readonly corruptedLogitDiff: number;
  /** Mean Σp(answers) on the clean prompts. */
  readonly cleanProb: number;
  readonly n: number;
}

export interface EvalResult {
  readonly tasks: Readonly<Record<ZooTask, TaskEval>>;
  /** The seeds and bos settings evaluated. */
  readonly seeds: readonly number[];
}

/** Per-example accuracy, logit difference and answer probability at the last position. */
function scoreRows(model: Transformer, rows: readonly (readonly number[])[], answers: readonly (readonly number[])[], wrongs: readonly (readonly number[])[]): { correct: number[]; ld: number[]; prob: number[] } {
  const logits = tf.tidy(() => {
    const out = model.forward(rows as number[][]);
    const [b, p, v] = out.shape;
    return tf.logSoftmax(tf.reshape(tf.slice(out, [0, p - 1, 0], [b, 1, v]), [b, v]), -1);
  });
  const lp = logits.arraySync() as number[][];
  logits.dispose();
  const lse = (row: number[], ids: readonly number[]) => {
    const m = Math.max(...ids.map((i) => row[i]));
    return m + Math.log(ids.reduce((s, i) => s + Math.exp(row[i] - m), 0));
  };
  const correct: number[] = [];
  const ld: number[] = [];
  const prob: number[] = [];
  lp.forEach((row, i) => {
    let top = 0;
    for (let j = 1; j < row.length; j++) if (row[j] > row[top]) top = j;
    correct.push(answers[i].includes(top) ? 1 : 0);
    ld.push(lse(row, answers[i]) - lse(row, wrongs[i]));
    prob.push(Math.exp(lse(row, answers[i])));
  });
  return { correct, ld, prob };
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * Evaluates a model on held-out generator data: for each seed, n prompts per task without
 * <bos> and n with it (so 2·n·seeds.length prompts per task).
 */
export function evaluateZooModel(model: Transformer, opts: { n: number; seeds: readonly number[] }): EvalResult {
  const tasks = {} as Record<ZooTask, TaskEval>;
  for (const task of ZOO_TASKS) {
    const correct: number[] = [];
    const cleanLd: number[] = [];
    const corrLd: number[] = [];
    const prob: number[] = [];
    for (const seed of opts.seeds) {
      for (const bos of [false, true]) {
        const ds = evalDataset(task, opts.n, seed, bos);
        const c = scoreRows(model, ds.clean, ds.answers, ds.wrongs);
        const k = scoreRows(model, ds.corrupted, ds.answers, ds.wrongs);
        correct.push(...c.correct);
        cleanLd.push(...c.ld);
        corrLd.push(...k.ld);
        prob.push(...c.prob);
      }
    }
    tasks[task] = { accuracy: mean(correct), cleanLogitDiff: mean(cleanLd), corruptedLogitDiff: mean(corrLd), cleanProb: mean(prob), n: correct.length };
  }
  return { tasks, seeds: opts.seeds };
}
