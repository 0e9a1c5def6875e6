/**
 * The patching engine and everything built directly on it: the masked edge forward, the
 * Patcher bound to a dataset, activation-patching sweeps, path patching and edge verification.
 */
export { PatchingEngine, RunCache, type MaskedForwardArgs } from './engine.js';
export { GraphBinding, HookBinding, bindGraph, bindingFacts, type BindingFacts, type LayerSlots } from './binding.js';
export { Patcher, type Ablation, type Direction, type PairData, type PatcherOptions } from './patcher.js';
export {
  SWEEP_KINDS,
  parseSweep,
  planSweep,
  runSweep,
  sweepName,
  sweepToMeta,
  topComponents,
  type PatchSite,
  type PlannedComponent,
  type SweepComponent,
  type SweepOptions,
  type SweepPlan,
  type SweepResult,
  type SweepSpec,
} from './sweeps.js';
export {
  HEAD_INPUTS,
  effectOf,
  maskPatching,
  pathEdges,
  pathPatch,
  pathPatchMany,
  verifyEdges,
  type EdgeEffect,
  type HeadInput,
  type PatchEffect,
  type PathPatchOptions,
  type PathPatchResult,
  type PathSpec,
} from './path-patching.js';
// the bar itself (createProgress in ./progress.js) belongs to the CLI; the library only reports
export type { OnProgress } from './progress.js';
