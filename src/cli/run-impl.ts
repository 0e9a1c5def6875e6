import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend/index.js';
import { loadModel } from '../model/load.js';
import { parseTokenIds } from '../model/tokenizer.js';
import { writeFileAtomic } from '../graph/index.js';
import { CircuitryError } from '../errors.js';

export async function runModel(args: { model: string; prompt?: string; tokens?: string; top: number; json: boolean; logitsOut?: string; backend?: string }): Promise<number> {
  const backend = await initBackend(args.backend);
  const loaded = await loadModel(args.model, { log: (m) => console.error(m) });
  const { model, tokenizer } = loaded;
  try {
    const ids = args.tokens !== undefined ? parseTokenIds(args.tokens, model.cfg.dVocab) : tokenizer.encodePrompt(args.prompt!);
    if (ids.length === 0) throw new CircuitryError('--prompt: the prompt is empty');
    const logits = model.forward([ids]);
    const data = (await logits.array()) as number[][][];
    const probs = tf.tidy(() => tf.softmax(logits, -1));
    const p = (await probs.array()) as number[][][];
    tf.dispose([logits, probs]);
    const k = Math.min(args.top, model.cfg.dVocab);
    const rows = ids.map((id, pos) => {
      const order = p[0][pos].map((v, i) => i).sort((a, b) => p[0][pos][b] - p[0][pos][a]).slice(0, k);
      return { position: pos, token: id, text: tokenizer.tokenString(id), top: order.map((t) => ({ token: t, text: tokenizer.tokenString(t), prob: p[0][pos][t], logit: data[0][pos][t] })) };
    });
    if (args.logitsOut) writeFileAtomic(args.logitsOut, JSON.stringify(data) + '\n');
    if (args.json) {
      console.log(JSON.stringify({ model: args.model, backend, tokens: ids, predictions: rows }, null, 1));
    } else {
      console.log(`model ${args.model} · backend ${backend} · ${ids.length} tokens`);
      for (const r of rows) {
        const preds = r.top.map((t) => `${JSON.stringify(t.text)} ${(t.prob * 100).toFixed(1)}%`).join('  ');
        console.log(`${String(r.position).padStart(4)} ${JSON.stringify(r.text).padEnd(14)} → ${preds}`);
      }
      if (args.logitsOut) console.log(`logits written to ${args.logitsOut}`);
    }
    return 0;
  } finally {
    model.dispose();
  }
}
