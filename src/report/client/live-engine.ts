import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { simdActive } from '../../backend/simd.js';
import { patchWasmKernels } from '../../backend/wasm-kernels.js';
import { LiveEvaluator, type LiveResult, type PerPrompt } from '../../discovery/live.js';
import { CircuitGraph } from '../../graph/graph.js';
import { modelFromTensors } from '../../model/arch/index.js';
import { parseSafetensors } from '../../model/safetensors-bytes.js';
import type { Transformer } from '../../model/transformer.js';
import type { LiveData } from '../live-types.js';

/**
 * The live report's engine in the browser: the CLI's own model, graph and patching code
 * (bundled by esbuild) on the embedded weights and datasets. The tfjs backend is the first of
 * wasm (its binaries inlined, handed over as blob: URLs), webgl and cpu that loads.
 */

function bytesOf(id: string): Uint8Array<ArrayBuffer> {
  const text = document.getElementById(id)?.textContent;
  if (!text) throw new Error(`circuitry live: the page holds no element #${id}`);
  const bin = atob(text.trim());
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

async function tryBackend(name: string): Promise<boolean> {
  try {
    if (!(await tf.setBackend(name))) return false;
    await tf.ready();
    return tf.getBackend() === name;
  } catch {
    return false;
  }
}

/** The backend that loaded: wasm (with or without SIMD), else webgl, else cpu. */
async function chooseBackend(live: LiveData): Promise<string> {
  try {
    const url = (id: string) => URL.createObjectURL(new Blob([bytesOf(id)], { type: 'application/wasm' }));
    const simd = url(live.wasm.simd);
    // threads need cross-origin isolation, which a file:// page never has
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    setWasmPaths({ 'tfjs-backend-wasm.wasm': url(live.wasm.plain), 'tfjs-backend-wasm-simd.wasm': simd, 'tfjs-backend-wasm-threaded-simd.wasm': simd });
    if (await tryBackend('wasm')) {
      // the CLI's kernel replacements and SIMD loops, as in Node (the engine then takes its buffered pass)
      patchWasmKernels(bytesOf(live.wasm.loops));
      return simdActive() ? 'wasm (SIMD, circuitry kernels)' : 'wasm';
    }
  } catch {
    // fall through to the next backend
  }
  for (const name of ['webgl', 'cpu']) if (await tryBackend(name)) return name;
  throw new Error('circuitry live: no tfjs backend could be loaded (wasm, webgl, cpu)');
}

export interface TimedResult extends LiveResult {
  /** Milliseconds the recompute took. */
  ms: number;
}

export class LiveEngine {
  readonly backend: string;
  readonly live: LiveData;
  readonly graph: CircuitGraph;
  private readonly model: Transformer;
  private readonly evaluators: LiveEvaluator[];
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(live: LiveData, backend: string, model: Transformer) {
    this.live = live;
    this.backend = backend;
    this.model = model;
    this.graph = new CircuitGraph(live.graph);
    this.evaluators = live.datasets.map((d) => new LiveEvaluator(model, this.graph, d, { metric: live.metric, batchSize: live.batchSize }));
  }

  static async load(live: LiveData): Promise<LiveEngine> {
    const backend = await chooseBackend(live);
    const source = `the embedded weights of ${live.model}`;
    const model = modelFromTensors(live.config, parseSafetensors(bytesOf(live.weights), source), source);
    return new LiveEngine(live, backend, model);
  }

  full(dataset = 0): { metric: number; perPrompt: PerPrompt } {
    const e = this.evaluator(dataset);
    return { metric: e.full, perPrompt: e.fullPerPrompt };
  }

  empty(dataset = 0): { metric: number; perPrompt: PerPrompt } {
    const e = this.evaluator(dataset);
    return { metric: e.empty, perPrompt: e.emptyPerPrompt };
  }

  /**
   * The circuit of exactly these edges on a dataset. Calls run one at a time, each after the
   * browser has had a turn to paint (the tensor work itself is synchronous).
   */
  evaluate(edgeNames: readonly string[], dataset = 0): Promise<TimedResult> {
    const run = this.queue.then(
      () =>
        new Promise<TimedResult>((resolve, reject) => {
          setTimeout(() => {
            try {
              const t0 = performance.now();
              const r = this.evaluator(dataset).evaluate(edgeNames);
              resolve({ ...r, ms: performance.now() - t0 });
            } catch (err) {
              reject(err instanceof Error ? err : new Error(String(err)));
            }
          }, 0);
        }),
    );
    this.queue = run.catch(() => undefined);
    return run;
  }

  private evaluator(dataset: number): LiveEvaluator {
    const e = this.evaluators[dataset];
    if (!e) throw new Error(`circuitry live: no dataset ${dataset} (the page has ${this.evaluators.length})`);
    return e;
  }
}
