import { type MaskEvaluator, Patcher } from '../patching/patcher.js';
import { PooledPatcher } from '../scale/pooled-patcher.js';
import { attributeEdgesAsync } from '../attribution/index.js';
import type { ScreenMethod } from './config.js';

/**
 * Attribution scores of every edge (dense, graph.denseSize) for the pipeline's screening step,
 * on the patcher's cached runs: EAP, or EAP-IG with `steps` integration steps. Stops within one
 * chunk of prompts when `signal` fires (InterruptedError). A pooled patcher scores each
 * worker's prompts in that worker.
 */
export async function screenEdges(
  patcher: MaskEvaluator,
  method: ScreenMethod,
  steps: number,
  opts: { onProgress?: (done: number, total: number) => void; signal?: AbortSignal } = {},
): Promise<Float32Array> {
  if (patcher instanceof PooledPatcher) return patcher.attribute(method, method === 'eap' ? undefined : steps, opts);
  if (!(patcher instanceof Patcher)) throw new Error('screenEdges: expected a Patcher or a PooledPatcher');
  return (await attributeEdgesAsync({ patcher }, method, { ...(method === 'eap' ? {} : { steps }), onProgress: opts.onProgress, signal: opts.signal })).scores;
}
