import type { Command } from './types.js';
import { CircuitryError } from '../../errors.js';
import { fmt, inFile, intList, jsonText, num, oneOf, outFile, promptFromFlags, readPromptSet, str, tokenText } from '../flags.js';

const HOOKS = ['resid_pre', 'resid_mid', 'resid_post', 'attn_out', 'mlp_out', 'mlp_pre', 'mlp_post'] as const;

/**
 * `circuitry steer`: activation addition. The steering vector is the mean activation difference
 * at a hook between two prompt sets (files), one contrast pair (--positive-prompt and
 * --negative-prompt), or a saved vector (--vector); it is added with a strength at a layer, and
 * the next-token distribution (and a greedy continuation) is printed with and without it.
 */
export const steerCommand: Command = {
  command: 'steer',
  describe: 'activation steering (ActAdd): add strength × (mean positive − mean negative activation) at a layer; prints next-token distributions and continuations with and without',
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'a zoo name, a local HuggingFace folder or a hub id' })
      .option('layer', { type: 'number', describe: 'the layer whose hook is read and steered (not with --vector)' })
      .option('hook', { type: 'string', default: 'resid_pre', describe: HOOKS.join(' | ') })
      .option('positive', { type: 'string', describe: 'prompt set file: one prompt a line (.jsonl: a JSON string or token id array a line)' })
      .option('negative', { type: 'string', describe: 'the contrasting prompt set file' })
      .option('positive-prompt', { type: 'string', describe: 'one positive prompt (a contrast pair with --negative-prompt)' })
      .option('negative-prompt', { type: 'string', describe: 'one negative prompt' })
      .option('vector', { type: 'string', describe: 'a steering vector saved with --save-vector, instead of prompt sets' })
      .option('reduce', { type: 'string', default: 'last', describe: "each prompt's activation: last (its last position) | mean (over its positions)" })
      .option('strength', { type: 'number', demandOption: true, describe: 'multiplier of the vector (0: no change)' })
      .option('prompt', { type: 'string', describe: 'the prompt to steer' })
      .option('tokens', { type: 'string', describe: 'the prompt as token ids instead of --prompt' })
      .option('positions', { type: 'string', describe: 'prompt positions to add at, e.g. 0,1 (default: every position, generated ones included)' })
      .option('generate', { type: 'number', default: 0, describe: 'greedy continuation length' })
      .option('top', { type: 'number', default: 10, describe: 'tokens shown per distribution' })
      .option('save-vector', { type: 'string', describe: 'write the steering vector (JSON) here' })
      .option('out', { type: 'string', describe: 'also write the comparison as JSON here' })
      .example('circuitry steer --model gpt2 --layer 6 --positive-prompt " Love" --negative-prompt " Hate" --strength 5 --prompt "I think dogs are" --generate 10', 'a contrast pair')
      .example('circuitry steer --model mini-gpt2 --layer 1 --positive pos.txt --negative neg.txt --strength 4 --prompt "..." --positions 2', 'prompt sets, one position'),
  run: (args) => runSteer(args),
};

async function runSteer(args: Record<string, unknown>): Promise<number> {
  const strength = num(args, 'strength', 'a finite number', () => true);
  if (strength === undefined) throw new CircuitryError('--strength: give the multiplier of the vector');
  const generate = num(args, 'generate', 'a non-negative integer', (n) => Number.isInteger(n) && n >= 0) ?? 0;
  const top = num(args, 'top', 'a positive integer', (n) => Number.isInteger(n) && n >= 1) ?? 10;
  const hookName = oneOf(args, 'hook', HOOKS, 'resid_pre');
  const reduce = oneOf(args, 'reduce', ['last', 'mean'] as const, 'last');
  const layerFlag = num(args, 'layer', 'a non-negative integer', (n) => Number.isInteger(n) && n >= 0);
  const vectorPath = inFile(args, 'vector', 'a steering vector JSON file');
  const posPath = inFile(args, 'positive', 'a prompt set file');
  const negPath = inFile(args, 'negative', 'a prompt set file');
  const posText = str(args, 'positive-prompt');
  const negText = str(args, 'negative-prompt');
  const sources = [vectorPath !== undefined, posPath !== undefined || negPath !== undefined, posText !== undefined || negText !== undefined].filter(Boolean).length;
  if (sources !== 1) throw new CircuitryError('give the steering vector one way: --positive FILE --negative FILE, --positive-prompt TEXT --negative-prompt TEXT, or --vector FILE');
  if ((posPath === undefined) !== (negPath === undefined)) throw new CircuitryError('--positive and --negative go together: give both prompt set files');
  if ((posText === undefined) !== (negText === undefined)) throw new CircuitryError('--positive-prompt and --negative-prompt go together: give both');
  if (!vectorPath && layerFlag === undefined) throw new CircuitryError('--layer: give the layer to read and steer');
  const out = outFile(args, false);
  const savePath = str(args, 'save-vector');
  const modelName = str(args, 'model');
  if (!modelName) throw new CircuitryError('--model: give a zoo name, a model folder or a hub id');

  const [{ initBackend }, { loadModel }, { parseTokenIds }, { writeFileAtomic }, { VERSION }, steering, { readFileSync }] = await Promise.all([
    import('../../backend/index.js'),
    import('../../model/load.js'),
    import('../../model/tokenizer.js'),
    import('../../graph/circuit-json.js'),
    import('../../version.js'),
    import('../../interventions/steering.js'),
    import('node:fs'),
  ]);
  const backend = await initBackend(str(args, 'backend'));
  console.log(`backend: ${backend}`);
  const loaded = await loadModel(modelName, { log: (m) => console.error(m) });
  const { model, tokenizer } = loaded;
  try {
    const cfg = model.cfg;
    const prompt = promptFromFlags(args, tokenizer, cfg.dVocab, parseTokenIds);
    const positions = intList(args, 'positions', prompt.length);
    let sv: { hook: ReturnType<typeof steering.steeringHookName>; layer: number; vector: Float32Array; source: Record<string, unknown> };
    if (vectorPath) {
      sv = readVector(vectorPath, readFileSync(vectorPath, 'utf8'), (layer, hook) => steering.steeringHookName(model, layer, hook));
      if (layerFlag !== undefined && layerFlag !== sv.layer) throw new CircuitryError(`--layer ${layerFlag} differs from the layer ${sv.layer} of --vector ${vectorPath}; leave --layer out`);
    } else {
      const layer = layerFlag!;
      const encode = (text: string, flag: string) => {
        try {
          const ids = tokenizer.encodePrompt(text);
          if (ids.length === 0) throw new CircuitryError('the prompt encodes to no tokens');
          return ids;
        } catch (e) {
          throw e instanceof CircuitryError ? new CircuitryError(`${flag}: ${e.message}`) : e;
        }
      };
      const positive = posPath ? readPromptSet(posPath, tokenizer, cfg.dVocab, '--positive') : [encode(posText!, '--positive-prompt')];
      const negative = negPath ? readPromptSet(negPath, tokenizer, cfg.dVocab, '--negative') : [encode(negText!, '--negative-prompt')];
      const v = steering.steeringVector(model, positive, negative, { layer, hook: hookName, reduce });
      sv = { hook: v.hook, layer, vector: v.vector, source: { positive: posPath ?? posText, negative: negPath ?? negText, n_positive: positive.length, n_negative: negative.length, reduce } };
    }
    const norm = Math.sqrt(sv.vector.reduce((s, x) => s + x * x, 0));
    console.log(`model: ${loaded.name}; steering ${sv.hook} with strength ${strength} at ${positions ? `positions ${positions.join(',')}` : 'every position'}; ‖vector‖ ${fmt(norm)}`);
    const c = steering.compareSteering(model, prompt, sv, { strength, positions, topK: top, generate });
    const show = (list: { id: number; prob: number }[]) => list.map((t) => `${JSON.stringify(tokenText(tokenizer, t.id))} ${fmt(t.prob)}`);
    const a = show(c.unsteered.top);
    const b = show(c.steered.top);
    const w = Math.max(12, ...a.map((x) => x.length));
    console.log(`\n${'unsteered'.padEnd(w)}  steered`);
    for (let i = 0; i < Math.max(a.length, b.length); i++) console.log(`${(a[i] ?? '').padEnd(w)}  ${b[i] ?? ''}`);
    console.log(`\nKL(steered ‖ unsteered) of the next token: ${fmt(c.kl)} nats`);
    if (generate > 0) {
      console.log(`unsteered: ${tokenizer.decode(prompt)} ⟶ ${tokenizer.decode(c.unsteered.continuation)}`);
      console.log(`steered:   ${tokenizer.decode(prompt)} ⟶ ${tokenizer.decode(c.steered.continuation)}`);
    }
    const vectorJson = { tool: { name: 'circuitry', version: VERSION }, model: { name: loaded.name, hash: loaded.source.hash }, hook: sv.hook, layer: sv.layer, width: sv.vector.length, norm, source: sv.source, vector: Array.from(sv.vector) };
    if (savePath) {
      writeFileAtomic(savePath, jsonText(vectorJson));
      console.log(`wrote ${savePath}`);
    }
    if (out) {
      const file = {
        tool: { name: 'circuitry', version: VERSION },
        created: new Date().toISOString(),
        backend,
        model: { name: loaded.name, hash: loaded.source.hash, source: loaded.source.kind },
        prompt: { tokens: prompt, text: str(args, 'prompt') ?? null },
        steering: { hook: sv.hook, layer: sv.layer, strength, positions: positions ?? 'all', norm, source: sv.source },
        unsteered: { top: c.unsteered.top.map((t) => ({ ...t, token: tokenText(tokenizer, t.id) })), continuation: c.unsteered.continuation },
        steered: { top: c.steered.top.map((t) => ({ ...t, token: tokenText(tokenizer, t.id) })), continuation: c.steered.continuation },
        kl: c.kl,
      };
      writeFileAtomic(out, jsonText(file));
      console.log(`wrote ${out}`);
    }
    return 0;
  } finally {
    model.dispose();
  }
}

/** A vector file written by --save-vector: {hook or layer, vector}. */
function readVector<H>(path: string, text: string, hookOf: (layer: number, hook: string) => H): { hook: H; layer: number; vector: Float32Array; source: Record<string, unknown> } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CircuitryError(`--vector ${path}: not JSON (${(e as Error).message})`);
  }
  const o = raw as { hook?: unknown; layer?: unknown; vector?: unknown };
  if (typeof o !== 'object' || o === null || !Array.isArray(o.vector) || !o.vector.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new CircuitryError(`--vector ${path}: expected {"layer": L, "hook": "blocks.L.hook_resid_pre", "vector": [numbers]}`);
  }
  if (typeof o.layer !== 'number' || !Number.isInteger(o.layer)) throw new CircuitryError(`--vector ${path}: "layer" must be an integer`);
  const m = typeof o.hook === 'string' ? /^blocks\.\d+\.(?:mlp\.)?hook_(resid_pre|resid_mid|resid_post|attn_out|mlp_out|pre|post)$/.exec(o.hook) : null;
  if (typeof o.hook === 'string' && !m) throw new CircuitryError(`--vector ${path}: "hook" '${o.hook}' is not a steerable hook`);
  const short = !m ? 'resid_pre' : m[1] === 'pre' ? 'mlp_pre' : m[1] === 'post' ? 'mlp_post' : m[1];
  let hook: H;
  try {
    hook = hookOf(o.layer, short);
  } catch (e) {
    throw e instanceof CircuitryError ? new CircuitryError(`--vector ${path}: ${e.message}`) : e;
  }
  return { hook, layer: o.layer, vector: Float32Array.from(o.vector as number[]), source: { vector: path } };
}
