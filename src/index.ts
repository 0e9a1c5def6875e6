/**
 * circuitry's library API: every capability of the CLI as a typed function.
 */
export { initBackend, backendName, BACKEND_ORDER, type BackendName } from './backend/index.js';
export { CircuitryError, InterruptedError } from './errors.js';
export { VERSION } from './version.js';
export { checkOutputPath, writeFileAtomic } from './io/files.js';

// model
export { loadModel, loadTokenizer, type LoadedModel, type LoadOptions } from './model/load.js';
export { modelFromTensors, weightsFromTensors, adapterFor, ADAPTERS, type ArchAdapter, type ModelWeights } from './model/arch/index.js';
export { Transformer, hookShape, mergeHooks, type ForwardOptions, type TokensInput } from './model/transformer.js';
export { configFromHf, configToHf, type ModelConfig } from './model/config.js';
export { readSafetensors, writeSafetensors, type HostTensor } from './model/safetensors.js';
export { parseSafetensors, parseSafetensorsFrom, safetensorsBytes, type ByteSource } from './model/safetensors-bytes.js';
export { readCheckpointFolder, hashFiles } from './model/checkpoint.js';
export { resolveModelPath } from './model/hub.js';
export { tokenizerForFolder, parseTokenIds, BpeTokenizer, R50kTokenizer, WordTokenizer, IdsTokenizer, type Tokenizer } from './model/tokenizer.js';
export { blockHook, parseHookName, BLOCK_HOOKS, type HookName, type HookFn, type Hooks, type BlockHook } from './model/hooks.js';

// zoo and tasks
export { zooModel, zooModels, registerZooModel, type ZooModel } from './zoo/index.js';
export * from './tasks/index.js';
export { taskCatalog, taskNames, checkTaskName, taskDataset, datasetToJsonl, type TaskEntry, type TaskTarget } from './tasks/catalog.js';

// graph and circuit files
export * from './graph/index.js';
export { provenance, datasetProvenance, type Provenance } from './graph/provenance.js';

// metrics
export * from './metrics/index.js';

// patching
export * from './patching/index.js';

// attribution
export * from './attribution/index.js';

// discovery
export { runAcdc, type AcdcOptions, type AcdcResult, type AcdcFaith, type AcdcCheckpoint } from './discovery/acdc.js';
export { checkCheckpoint, fileCheckpoint, type CheckpointStore } from './discovery/checkpoint.js';
export { visitingOrder, parseAcdcOrder, ACDC_ORDERS, type AcdcOrder } from './discovery/order.js';
export { runPipeline, checkpointPath, type PipelineResult, type PipelineHooks } from './discovery/pipeline.js';
// runPipeline(…, { runner }) on `circuitry worker` processes: RedisShardRunner.connect(parseRedisUrl(url), { queue: 'circuitry' })
export { RedisShardRunner, type RedisShardRunnerOptions } from './scale/redis-runner.js';
export { parseRedisUrl, type RedisTarget } from './scale/redis.js';
export type { ShardRunner } from './scale/runner.js';
export { readPipelineConfig, resolvePipelineConfig, type PipelineConfig } from './discovery/config.js';
export { resolveDataset, datasetSpec, dataSourceOf, datasetMeta, type DataSource, type DataSpec } from './discovery/data.js';
export { circuitMetrics, evaluateCircuit, evidenceRank, faithfulnessCurve, rocAuc, precisionRecall, maskOf, FAITHFULNESS_PERCENTS, type CircuitMetrics } from './discovery/evaluate.js';
export { LiveEvaluator, type LiveEvaluatorOptions, type LiveResult, type PerPrompt } from './discovery/live.js';

// interventions beyond patching
export * from './interventions/index.js';
