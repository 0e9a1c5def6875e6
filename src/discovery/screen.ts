import type { Patcher } from '../patching/patcher.js';
import { attributeEdgesAsync } from '../attribution/index.js';
import type { ScreenMethod } from './config.js';

/**
 * Attribution scores of every edge (dense, graph.denseSize) for the pipeline's screening step,
 * on the patcher's cached runs: EAP, or EAP-IG with `steps` integration steps. Stops within one
 * chunk of prompts when `signal` fires (InterruptedError).
 */
export async function screenEdges(
  patcher: Patcher,
  method: ScreenMethod,
  steps: number,
  opts: { onProgress?: (done: number, total: number) => void; signal?: AbortSignal } = {},
): Promise<Float32Array> {
  return (await attributeEdgesAsync({ patcher }, method, { ...(method === 'eap' ? {} : { steps }), onProgress: opts.onProgress, signal: opts.signal })).scores;
}
