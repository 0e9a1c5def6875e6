import type { Patcher } from '../patching/patcher.js';
import type { ScreenMethod } from './config.js';

/**
 * Attribution scores of every edge (dense, graph.denseSize), for the pipeline's screening step.
 * EAP is minus the mask gradient at m = 1 (DESIGN.md's sign convention).
 */
export function screenEdges(patcher: Patcher, method: ScreenMethod, steps: number): Float32Array {
  if (method !== 'eap') void steps;
  const { grad } = patcher.maskGradient();
  return grad.map((g) => -g);
}
