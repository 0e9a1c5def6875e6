import type { Patcher } from '../patching/patcher.js';
import { attributeEdges } from '../attribution/index.js';
import type { ScreenMethod } from './config.js';

/**
 * Attribution scores of every edge (dense, graph.denseSize) for the pipeline's screening step,
 * on the patcher's cached runs: EAP, or EAP-IG with `steps` integration steps.
 */
export function screenEdges(patcher: Patcher, method: ScreenMethod, steps: number, onProgress?: (done: number, total: number) => void): Float32Array {
  return attributeEdges({ patcher }, method, { ...(method === 'eap' ? {} : { steps }), onProgress }).scores;
}
