/**
 * Interventions beyond patching: causal tracing, activation steering, optimal patch directions,
 * hierarchical search, and statistical significance of per-component effects.
 */
export {
  TRACE_KINDS,
  causalTrace,
  embeddingStd,
  traceMapToSweep,
  type CausalTraceOptions,
  type CausalTraceResult,
  type TraceKind,
  type TraceMap,
} from './causal-tracing.js';
export {
  STEER_HOOKS,
  compareSteering,
  greedyContinuation,
  hookWidth,
  meanDifference,
  nextTokenDistribution,
  promptActivations,
  steeredLogits,
  steeringHookName,
  steeringHooks,
  steeringVector,
  type Reduce,
  type SteerHook,
  type SteerOptions,
  type SteeringComparison,
  type SteeringVector,
  type TokenProb,
} from './steering.js';
export { optimalDirection, parseDirectionSite, type DirectionSite, type OptimalDirectionOptions, type OptimalDirectionResult } from './optimal-direction.js';
export { finestSites, hierarchicalSearch, type HierarchicalLevel, type HierarchicalOptions, type HierarchicalResult, type LayerUnit, type LevelComponent } from './hierarchical.js';
export {
  CORRECTIONS,
  SIGNIFICANCE_TESTS,
  adjustPValues,
  resolveSignificanceOptions,
  significance,
  type ComponentSignificance,
  type Correction,
  type ResolvedSignificanceOptions,
  type SignificanceOptions,
  type SignificanceResult,
  type SignificanceTest,
} from './significance.js';
export {
  edgeAttributionSignificance,
  sweepWithSignificance,
  type AttributionSignificanceOptions,
  type EdgeSignificance,
  type SignificanceSummary,
  type SignificantComponent,
  type SignificantSweepResult,
  type SweepSignificanceOptions,
} from './sweep-significance.js';
export { checkSite, evaluateEdges, evaluateSites, sitesOfPlan, type Site, type SiteEvaluation, type SiteEvaluationOptions, type SitePart } from './sites.js';
export { SeededRandom } from './rng.js';
