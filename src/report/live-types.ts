/**
 * What a live report carries besides the page data (types only: the browser bundle imports
 * them). The weights and the tfjs wasm binaries ride in their own non-executed script elements
 * as base64, named here by element id.
 */
import type { GraphShape } from '../graph/graph.js';
import type { MetricName } from '../metrics/index.js';

export interface LivePrompt {
  clean: string;
  corrupted: string;
  answer: string;
  wrong: string;
}

export interface LiveCircuit {
  /** Display name (the file's stem) and the in-graph edges as discovered. */
  name: string;
  discovered: string[];
  /** Index into LiveData.datasets: the data `circuitry evaluate` uses for this circuit. */
  dataset: number;
}

export interface LiveDataset {
  name: string;
  clean: number[][];
  corrupted: number[][];
  answers: number[][];
  wrongs: number[][];
  text: LivePrompt[];
}

export interface LiveData {
  model: string;
  /** The model's HuggingFace config.json object. */
  config: unknown;
  /** Ids of the elements holding the weights (one float32 safetensors file, base64). */
  weights: string;
  weightBytes: number;
  graph: GraphShape;
  /** `circuitry evaluate`'s settings: metric, prompts per pass; noising with the corrupted run. */
  metric: MetricName;
  batchSize: number;
  datasets: LiveDataset[];
  circuits: LiveCircuit[];
  /** Ids of the elements holding tfjs-backend-wasm's binaries and circuitry's SIMD loops (src/backend/simd/loops.wasm), base64. */
  wasm: { plain: string; simd: string; loops: string };
}

/** Element ids of the binary payloads. */
export const LIVE_IDS = {
  data: 'circuitry-live',
  weights: 'circuitry-weights',
  wasmPlain: 'circuitry-wasm',
  wasmSimd: 'circuitry-wasm-simd',
  simdLoops: 'circuitry-simd-loops',
} as const;

/** The live data and the base64 payloads by element id. */
export interface LivePayload {
  data: LiveData;
  blobs: Record<string, string>;
}
