// Attribution patching: node-level, EAP, EAP-IG (inputs and activations).
export { GRADIENT_CHOICES } from './types.js';
export type { AttributionInput, AttributionMethodKey, AttributionOptions, EdgeAttribution, GradientChoice } from './types.js';
export { ATTRIBUTION_METHODS, ATTRIBUTION_METHOD_KEYS, attributeEdges, attributeEdgesAsync, attributionMethod } from './registry.js';
export type { AttributionMethod } from './registry.js';
export { DEFAULT_STEPS, eap, eapIg, eapIgActivations } from './eap.js';
export { attributeNodes, nodeScoresForGraph } from './node.js';
export type { NodeAttribution, NodeAttributionOptions } from './node.js';
export { attributionCircuit, attributionMeta, checkSelection } from './circuit.js';
export type { AttributionProvenance, SelectionOptions } from './circuit.js';
export { EdgeGradients } from './gradients.js';
export type { GradientPath } from './gradients.js';
