import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, extname, join } from 'node:path';
import { initBackend } from '../backend/index.js';
import { CircuitryError } from '../errors.js';
import type { Circuit } from '../graph/circuit.js';
import type { CircuitFile } from '../graph/circuit-types.js';
import { readCircuitFile } from '../graph/circuit-json.js';
import { writeFileAtomic } from '../io/files.js';
import { circuitNames, type Written } from './files.js';
import { renderLiveComparison, renderLiveReport, type ReportOptions } from './render.js';
import { INDEX_FILE, WEIGHTS_FILE, readCheckpointFolder, readJsonFile, shardsOfIndex } from '../model/checkpoint.js';
import { resolveModelPath } from '../model/hub.js';
import { loadModel, type LoadedModel } from '../model/load.js';
import { safetensorsBytes } from '../model/safetensors-bytes.js';
import type { HostTensor } from '../model/safetensors.js';
import { zooModel } from '../zoo/index.js';
import '../zoo/builtin.js';
import { parseMetricName } from '../metrics/index.js';
import { PatchingEngine } from '../patching/engine.js';
import type { PipelineConfig } from '../discovery/config.js';
import { resolveDataset } from '../discovery/data.js';
import type { TaskDataset } from '../tasks/index.js';
import { LIVE_IDS, type LiveData, type LiveDataset, type LivePayload } from './live-types.js';

export type { LivePayload } from './live-types.js';

/**
 * The Node side of `circuitry report --live`: checks the model's size against the limit before
 * any work, then gathers what the page needs to re-run the circuit: the weights (one float32
 * safetensors file), the model's config, the dataset `circuitry evaluate` would use (token ids
 * and text), its metric settings, and tfjs-backend-wasm's binaries.
 */

/** Default limit on the weights a live report embeds. */
export const LIVE_MAX_MB = 64;

export interface LiveOptions {
  /** Refuse models whose weights exceed this many MB (2^20 bytes); default LIVE_MAX_MB. */
  maxMb?: number;
  /** As `circuitry evaluate`: default logit-diff. */
  metric?: string;
  /** As `circuitry evaluate`: default 32. */
  batchSize?: number;
  backend?: string;
  log?: (message: string) => void;
}

export interface LiveInput {
  name: string;
  file: CircuitFile;
  circuit: Circuit;
  source: string;
}

const MB = 2 ** 20;
const mb = (bytes: number): string => (bytes / MB).toFixed(bytes < MB ? 2 : 1);

/** Where a model's weights live, resolved without reading them. */
type WeightSource = { kind: 'built'; build: () => { config: unknown; tensors: Map<string, HostTensor> }; bytes: number } | { kind: 'folder'; dir: string; bytes: number };

async function weightSource(name: string, log?: (m: string) => void): Promise<WeightSource> {
  const zoo = zooModel(name);
  if (zoo && !existsSync(name)) {
    if (zoo.build) {
      const built = zoo.build();
      let floats = 0;
      for (const t of built.tensors.values()) floats += t.data.length;
      return { kind: 'built', build: () => built, bytes: 4 * floats };
    }
    return folderSource(zoo.dir!);
  }
  return folderSource((await resolveModelPath(name, { log })).dir);
}

function folderSource(dir: string): WeightSource {
  const single = join(dir, WEIGHTS_FILE);
  const index = join(dir, INDEX_FILE);
  let bytes = 0;
  if (existsSync(single)) bytes = statSync(single).size;
  else if (existsSync(index)) {
    for (const shard of shardsOfIndex(readJsonFile(index), index).shards) {
      const path = join(dir, shard);
      if (existsSync(path)) bytes += statSync(path).size;
    }
  }
  return { kind: 'folder', dir, bytes };
}

function refuseAbove(name: string, bytes: number, maxMb: number, what: string): void {
  if (bytes > maxMb * MB) {
    throw new CircuitryError(
      `report --live: model '${name}' has ${mb(bytes)} MB of ${what}, above the live report's limit of ${maxMb} MB (--live-max-mb); write the static report (without --live), or raise the limit`,
    );
  }
}

function wasmBinary(file: string): string {
  const require = createRequire(import.meta.url);
  const dist = dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  return readFileSync(join(dist, file)).toString('base64');
}

/** The data `circuitry evaluate` resolves for a circuit file (meta.config's task or dataset). */
function dataSpecOf(input: LiveInput): { dataset?: string; task?: PipelineConfig['task'] } {
  const cfg = (input.file.meta?.config ?? {}) as Partial<PipelineConfig>;
  if (!cfg.dataset && !cfg.task) throw new CircuitryError(`${input.source}: the file does not record its data (meta.config.task or meta.config.dataset), which --live needs to re-run the circuit`);
  return { dataset: cfg.dataset, task: cfg.task };
}

function liveDataset(loaded: LoadedModel, data: TaskDataset): LiveDataset {
  const show = (ids: readonly number[]): string => loaded.tokenizer.decode(ids);
  const text = data.clean.map((c, i) => data.text?.[i] ?? { clean: show(c), corrupted: show(data.corrupted[i]), answer: show(data.answers[i]), wrong: show(data.wrongs[i]) });
  const rows = (r: readonly (readonly number[])[]): number[][] => r.map((x) => [...x]);
  return { name: data.name, clean: rows(data.clean), corrupted: rows(data.corrupted), answers: rows(data.answers), wrongs: rows(data.wrongs), text };
}

/**
 * Everything a live page needs for one or more circuits of one model. The size limit is checked
 * on the weight files (or built tensors) before the model is loaded, and again on the float32
 * bytes embedded (larger for F16/BF16 checkpoints).
 */
export async function buildLivePayload(inputs: readonly LiveInput[], opts: LiveOptions = {}): Promise<LivePayload> {
  const maxMb = opts.maxMb ?? LIVE_MAX_MB;
  if (!(maxMb > 0)) throw new CircuitryError(`--live-max-mb: expected a positive number, got ${opts.maxMb}`);
  const metric = parseMetricName(opts.metric ?? 'logit-diff');
  const batchSize = opts.batchSize ?? 32;
  if (!(Number.isInteger(batchSize) && batchSize > 0)) throw new CircuitryError(`--batch-size: expected a positive integer, got ${opts.batchSize}`);
  const names = inputs.map((x) => x.file.meta?.model?.name);
  names.forEach((n, i) => {
    if (!n) throw new CircuitryError(`${inputs[i].source}: the file does not name its model (meta.model.name), which --live needs`);
  });
  const model = names[0]!;
  const other = names.findIndex((n) => n !== model);
  if (other >= 0) throw new CircuitryError(`compare --live: every circuit must come from one model; ${inputs[0].source} is on '${model}' but ${inputs[other].source} is on '${names[other]}'`);
  const specs = inputs.map(dataSpecOf);
  const shape = inputs[0].circuit.graph.shape;
  inputs.forEach((x) => {
    const s = x.circuit.graph.shape;
    if (s.nLayers !== shape.nLayers || s.nHeads !== shape.nHeads || s.hasMlp !== shape.hasMlp || s.qkv !== shape.qkv) {
      throw new CircuitryError(`compare --live: ${x.source} has a different graph (${s.nLayers} layers × ${s.nHeads} heads) than ${inputs[0].source}`);
    }
  });

  const source = await weightSource(model, opts.log);
  refuseAbove(model, source.bytes, maxMb, 'weights');

  let config: unknown;
  let tensors: ReadonlyMap<string, HostTensor>;
  if (source.kind === 'built') ({ config, tensors } = source.build());
  else ({ configRaw: config, tensors } = readCheckpointFolder(source.dir));
  const weights = safetensorsBytes(tensors);
  refuseAbove(model, weights.byteLength, maxMb, 'float32 weights');

  await initBackend(opts.backend);
  const loaded = await loadModel(model, { log: opts.log });
  try {
    // the page builds the engine on this graph: a circuit of another shape fails here, not there
    try {
      new PatchingEngine(loaded.model, inputs[0].circuit.graph).dispose();
    } catch (err) {
      throw err instanceof CircuitryError ? new CircuitryError(`${inputs[0].source}: ${err.message} ('${model}')`) : err;
    }
    const datasets: LiveDataset[] = [];
    const seen = new Map<string, number>();
    const circuits = inputs.map((x, i) => {
      const key = JSON.stringify(specs[i]);
      let at = seen.get(key);
      if (at === undefined) {
        at = datasets.length;
        seen.set(key, at);
        datasets.push(liveDataset(loaded, resolveDataset(loaded, specs[i])));
      }
      const discovered = Object.entries(x.file.edges).filter(([, e]) => e.in_graph).map(([n]) => n);
      return { name: x.name, discovered, dataset: at };
    });
    const data: LiveData = {
      model,
      config,
      weights: LIVE_IDS.weights,
      weightBytes: weights.byteLength,
      graph: { ...shape },
      metric,
      batchSize,
      datasets,
      circuits,
      wasm: { plain: LIVE_IDS.wasmPlain, simd: LIVE_IDS.wasmSimd, loops: LIVE_IDS.simdLoops },
    };
    return {
      data,
      blobs: {
        [LIVE_IDS.weights]: Buffer.from(weights.buffer, weights.byteOffset, weights.byteLength).toString('base64'),
        [LIVE_IDS.wasmPlain]: wasmBinary('tfjs-backend-wasm.wasm'),
        [LIVE_IDS.wasmSimd]: wasmBinary('tfjs-backend-wasm-simd.wasm'),
        [LIVE_IDS.simdLoops]: readFileSync(new URL('../backend/simd/loops.wasm', import.meta.url)).toString('base64'),
      },
    };
  } finally {
    loaded.model.dispose();
  }
}

function stem(path: string): string {
  const b = basename(path);
  return extname(b) ? b.slice(0, -extname(b).length) : b;
}

function readInput(path: string, name = stem(path)): LiveInput {
  const { file, circuit } = readCircuitFile(path);
  return { name, file, circuit, source: path };
}

/** `circuitry report CIRCUIT --live`: the report with live patching (default reports/<basename>.html). */
export async function writeLiveReport(input: string, out?: string, opts: LiveOptions & Omit<ReportOptions, 'source'> = {}): Promise<Written> {
  const x = readInput(input);
  const { title, topEdges, ...liveOpts } = opts;
  const live = await buildLivePayload([x], liveOpts);
  const html = renderLiveReport(x.file, live, { title, topEdges, source: input });
  const target = out ?? join('reports', `${stem(input)}.html`);
  writeFileAtomic(target, html);
  return { out: target, bytes: Buffer.byteLength(html) };
}

/** `circuitry compare A B --live`: the comparison page with live patching of their union, intersection and each alone. */
export async function writeLiveComparison(inputs: readonly string[], out?: string, opts: LiveOptions = {}): Promise<Written> {
  if (inputs.length < 2) throw new CircuitryError(`compare: expected at least two circuit files, got ${inputs.length}`);
  const names = circuitNames(inputs);
  const xs = inputs.map((p, i) => readInput(p, names[i]));
  const live = await buildLivePayload(xs, opts);
  const html = renderLiveComparison(
    xs.map((x) => ({ name: x.name, file: x.file, source: x.source })),
    live,
  );
  const target = out ?? join('reports', `compare-${inputs.map(stem).join('-').slice(0, 80)}.html`);
  writeFileAtomic(target, html);
  return { out: target, bytes: Buffer.byteLength(html) };
}
