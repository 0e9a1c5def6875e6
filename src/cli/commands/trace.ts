import type { Command } from './types.js';
import { CircuitryError } from '../../errors.js';
import { fmt, intList, jsonText, oneOf, outFile, positionNames, promptFromFlags, readNumber, str, tokenText } from '../flags.js';
import { modelOption, numberFlag, readWorkers, workersOption } from '../options.js';
import { redisOptions, withShardRunner } from '../shard-runner.js';
import type { ShardRunner } from '../../scale/index.js';

/**
 * `circuitry trace`: causal tracing (Meng et al. 2022). Noise on the embeddings of chosen
 * positions corrupts the prompt; restoring one clean hidden state at a time gives layer ×
 * position maps of the answer's probability. Prints the peaks; writes the maps to --out.
 */
export const traceCommand: Command = {
  command: 'trace',
  describe: 'causal tracing: corrupt chosen positions with Gaussian noise, restore clean states one (layer, position) at a time; writes layer × position maps',
  builder: (y) =>
    redisOptions(workersOption(modelOption(y)), 'the restorations')
      .option('prompt', { type: 'string', describe: 'the prompt text' })
      .option('tokens', { type: 'string', describe: 'the prompt as token ids (e.g. 464,3290) instead of --prompt' })
      .option('answer', { type: 'string', describe: 'the answer token (text that encodes to one token)' })
      .option('answer-id', { type: 'string', describe: 'the answer as token id(s) instead of --answer (several: their probabilities are summed)' })
      .option('noise-positions', { type: 'string', describe: 'positions whose embeddings get noise, e.g. 1,2,3 (default: every position but the last)' })
      .option('sigma', numberFlag("noise σ as a multiple of the embedding matrix's standard deviation", 3))
      .option('samples', numberFlag('noise samples averaged over', 10))
      .option('seed', numberFlag('seed of the noise', 0))
      .option('kinds', { type: 'string', describe: 'states to restore: resid_pre,resid_post,attn_out,mlp_out (default all)' })
      .option('window', numberFlag('restore this many consecutive layers around each layer together', 1))
      .option('metric', { type: 'string', default: 'prob', describe: 'prob | logprob of the answer' })
      .option('out', { type: 'string', demandOption: true, describe: 'the JSON file to write' })
      .example('circuitry trace --model mini-gpt2 --prompt "When Mary and John went to the store , John gave a drink to" --answer Mary --noise-positions 1,3 --out trace.json', 'which states carry the names')
      .example('circuitry trace --model gpt2 --prompt "The Eiffel Tower is in the city of" --answer " Paris" --noise-positions 1,2,3,4 --out eiffel.json', 'ROME-style causal trace (GPT-2 from the HuggingFace cache)'),
  run: (args) => withShardRunner(args, readWorkers(args), (runner) => runTrace(args, runner)),
};

async function runTrace(args: Record<string, unknown>, runner: ShardRunner | undefined): Promise<number> {
  // flags that need no model first
  const sigma = readNumber(args, 'sigma', 'positive');
  const samples = readNumber(args, 'samples', 'count', { max: 4096 });
  const seed = readNumber(args, 'seed', 'integer');
  const window = readNumber(args, 'window', 'count');
  const metric = oneOf(args, 'metric', ['prob', 'logprob'] as const, 'prob');
  const out = outFile(args)!;
  const kindsText = str(args, 'kinds');
  const workers = readWorkers(args);
  const { TRACE_KINDS, traceMapToSweep } = await import('../../interventions/causal-tracing.js');
  let kinds: (typeof TRACE_KINDS)[number][] | undefined;
  if (kindsText !== undefined) {
    kinds = kindsText.split(',').map((k) => k.trim()).filter((k) => k !== '') as typeof kinds;
    for (const k of kinds!) if (!(TRACE_KINDS as readonly string[]).includes(k)) throw new CircuitryError(`--kinds: unknown state '${k}' (expected ${TRACE_KINDS.join(', ')})`);
    if (kinds!.length === 0) throw new CircuitryError(`--kinds: give at least one of ${TRACE_KINDS.join(', ')}`);
  }
  if (str(args, 'answer') === undefined && str(args, 'answer-id') === undefined) throw new CircuitryError('give the answer as --answer TOKEN or --answer-id ID');
  if (str(args, 'answer') !== undefined && str(args, 'answer-id') !== undefined) throw new CircuitryError('give --answer or --answer-id, not both');

  const [{ backendAndModel }, { parseTokenIds }, { writeFileAtomic }, { provenance }, { createProgress }] = await Promise.all([
    import('../load.js'),
    import('../../model/tokenizer.js'),
    import('../../io/files.js'),
    import('../../graph/provenance.js'),
    import('../progress.js'),
  ]);
  const { loaded } = await backendAndModel(args, str(args, 'model')!, { shareWeights: workers !== 1 });
  const { model, tokenizer } = loaded;
  const { Executor } = await import('../../scale/index.js');
  const executor = new Executor(loaded, workers, { runner });
  try {
    const cfg = model.cfg;
    const tokens = promptFromFlags(args, tokenizer, cfg.dVocab, parseTokenIds);
    let answer: number[];
    const answerText = str(args, 'answer');
    if (answerText !== undefined) {
      let ids: number[];
      try {
        ids = tokenizer.encode(answerText);
      } catch (e) {
        throw e instanceof CircuitryError ? new CircuitryError(`--answer: ${e.message}`) : e;
      }
      if (ids.length !== 1) throw new CircuitryError(`--answer: '${answerText}' encodes to ${ids.length} tokens (${ids.join(',')}); give text of one token, or --answer-id`);
      answer = ids;
    } else {
      try {
        answer = parseTokenIds(str(args, 'answer-id')!, cfg.dVocab);
      } catch (e) {
        throw e instanceof CircuitryError ? new CircuitryError(`--answer-id: ${e.message}`) : e;
      }
    }
    const noisePositions = intList(args, 'noise-positions', tokens.length);
    const labels = positionNames(tokens, tokenizer);
    console.log(`model: ${loaded.name} (${cfg.nLayers} layers); prompt: ${tokens.length} tokens; answer: ${answer.map((a) => JSON.stringify(tokenText(tokenizer, a))).join(' + ')}`);
    const progress = createProgress('trace');
    const t0 = performance.now();
    let r;
    try {
      r = await executor.trace(tokens, answer, { noisePositions, sigmaScale: sigma, samples, seed, kinds, window, metric, onProgress: progress.update });
    } finally {
      progress.stop();
    }
    const seconds = (performance.now() - t0) / 1000;
    console.log(`noise on ${r.noisePositions.map((p) => labels[p]).join(' ')}: σ = ${fmt(r.sigma)} (${r.sigmaScale}× the embedding std ${fmt(r.embeddingStd)}), ${r.samples} samples, seed ${r.seed}`);
    console.log(`${metric} of the answer: clean ${fmt(r.clean)}, corrupted ${fmt(r.corrupted)}`);
    for (const m of r.maps) {
      const cells = m.restored.flatMap((row, l) => row.map((v, p) => ({ l, p, v, ie: m.indirect[l][p] })));
      const best = cells.sort((a, b) => b.ie - a.ie).slice(0, 3);
      console.log(`  ${m.kind.padEnd(10)} strongest restorations: ${best.map((c) => `L${c.l} ${labels[c.p]} ${fmt(c.v)} (+${fmt(c.ie)})`).join(', ')}`);
    }
    const pooled = executor.threads > 0 ? ` on ${executor.threads} workers` : '';
    console.log(`${r.maps.length * cfg.nLayers * tokens.length} restorations in ${r.forwardPasses} forward passes${pooled}, ${seconds.toFixed(1)} s`);
    const file = {
      ...provenance({ model: loaded, timings: { trace: seconds } }),
      prompt: { tokens, labels, text: str(args, 'prompt') ?? null },
      answer: { ids: answer, text: answer.map((a) => tokenText(tokenizer, a)) },
      metric,
      noise: { positions: r.noisePositions, sigma: r.sigma, sigma_scale: r.sigmaScale, embedding_std: r.embeddingStd, samples: r.samples, seed: r.seed },
      window: r.window,
      clean: r.clean,
      corrupted: r.corrupted,
      corrupted_per_sample: r.corruptedPerSample,
      forward_passes: r.forwardPasses,
      // rows = layers, cols = positions
      maps: Object.fromEntries(r.maps.map((m) => [m.kind, { rows: m.rows, cols: labels, restored: m.restored, indirect: m.indirect, recovery: m.recovery, peak: m.peak }])),
      // ready for a circuit file's meta.sweeps (report heatmaps)
      meta_sweeps: r.maps.map((m) => traceMapToSweep(r, m, labels)),
    };
    writeFileAtomic(out, jsonText(file));
    console.log(`wrote ${out}`);
    return 0;
  } finally {
    await executor.close();
    model.dispose();
  }
}
