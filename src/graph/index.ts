// The graph folder's public API.
export { CircuitGraph, graphForModel, graphShapeFor } from './graph.js';
export type { Destination, DestinationKind, Edge, GraphShape, Source } from './graph.js';
export type * from './circuit-types.js';
export {
  assertSameShape,
  carried,
  circuitFromEdgeScores,
  countInGraph,
  createCircuit,
  describeShape,
  edgeCountFormula,
  edgeInGraph,
  edgeScore,
  emptyCircuit,
  fullCircuit,
  inGraphEdges,
  inGraphNodes,
  nodeInGraph,
  nodeScore,
  nodeTable,
  sameShape,
  withEdges,
  withInGraph,
  withScores,
} from './circuit.js';
export type { Circuit, CircuitInit, NodeInfo, NodeKind, NodeTable } from './circuit.js';
export { circuitFromFile, circuitToJson, formatPath, parseCircuitJson, parseJsonLenient, readCircuitFile, writeCircuitFile, writeFileAtomic } from './circuit-json.js';
export type { CfgExtra } from './circuit-json.js';
export { dotString, escapeXml, toDot, toGraphML, toGraphology } from './export.js';
export type { CircuitEdgeAttributes, CircuitGraphAttributes, CircuitNodeAttributes, DotOptions, ExportOptions, GraphologyOptions } from './export.js';
export { edgeSetIoU, greedy, nodeSetIoU, pruneDisconnected, setIoU, threshold, topN } from './select.js';
export type { SelectOptions } from './select.js';
export { collapseToNodes } from './granularity.js';
export type { CollapseOptions } from './granularity.js';
