import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../model/config.js';
import { type HookFn, type HookName, blockHook } from '../model/hooks.js';
import type { CircuitGraph } from '../graph/graph.js';
import { CircuitryError } from '../errors.js';

/**
 * The one map from graph names (DESIGN.md) to the runtime's hook points. Every engine (masked
 * tensor pass, buffered pass, sparse pass, attribution gradients, node attribution) reads its
 * hooks from here; nothing else turns node names into hook names.
 *
 * Sources (what a node writes into the residual stream):
 * - `input`: what enters the stream before block 0: hook_embed + hook_pos_embed with learned
 *   positions, hook_embed alone with rotary ones (the runtime has already scaled it, e.g. by √d
 *   for Gemma). Its sum is blocks.0.hook_resid_pre.
 * - `a{l}.h{h}`: blocks.l.attn.hook_result[:, :, h]. With a post-attention norm (Gemma-2) that
 *   is the head's output BEFORE the norm: an edge from it is patched inside the norm, so the
 *   destination reads norm(Σ heads + b with this head's output replaced) − norm(Σ heads + b)
 *   (EAP-IG's evaluate_graph; `headsInsideNorm`).
 * - `m{l}`: blocks.l.hook_mlp_out (after any post-MLP norm).
 * Destinations (what reads the residual stream):
 * - `a{l}.h{h}<q|k|v>`: blocks.l.hook_{q,k,v}_input[:, :, h] (or row h·3 + q|k|v of the
 *   runtime's HeadInputs); `a{l}.h{h}` at node granularity reads one input for all three.
 * - `m{l}`: blocks.l.hook_mlp_in; in a parallel block (NeoX) that is the block input, so m{l}
 *   reads only the sources before layer l's heads.
 * - `logits`: the final residual, blocks.{L-1}.hook_resid_post (ln_final's input).
 */
export interface LayerSlots {
  /** First destination row of the layer's heads (rows h·3 + q|k|v, or h at node granularity). */
  readonly heads: number;
  /** The MLP's destination row (-1 when attention-only). */
  readonly mlp: number;
  /** Sources before this layer's heads: [0, srcBefore) feed the heads. */
  readonly srcBefore: number;
  /** Sources the MLP reads: [0, mlpSources) (srcBefore in a parallel block, srcBefore + H otherwise). */
  readonly mlpSources: number;
}

/** The model facts the binding depends on (derived from the config alone). */
export interface BindingFacts {
  /** Learned positions: `input` also includes hook_pos_embed. */
  readonly learnedPositions: boolean;
  /** Attention and MLP read the same block input. */
  readonly parallel: boolean;
  /** Head outputs reach the residual through a post-attention norm (Gemma-2). */
  readonly headsInsideNorm: boolean;
}

/** What the binding reads off a config: positions, parallel blocks, post-attention norms. */
export function bindingFacts(cfg: ModelConfig): BindingFacts {
  return {
    learnedPositions: cfg.positional === 'learned',
    parallel: cfg.parallelAttnMlp,
    headsInsideNorm: cfg.postNorms,
  };
}

/** The hooks of a model's node kinds, from its config alone (GraphBinding adds a graph's rows). */
export class HookBinding {
  readonly facts: BindingFacts;
  readonly nLayers: number;
  readonly nHeads: number;
  /** Hooks whose activations add up to the `input` node's output. */
  readonly inputHooks: readonly HookName[];
  /** The hook whose activation IS the input's output (the residual entering block 0); replace it to replace the input. */
  readonly inputResidual: HookName = blockHook(0, 'hook_resid_pre');

  constructor(cfg: ModelConfig) {
    this.facts = bindingFacts(cfg);
    this.nLayers = cfg.nLayers;
    this.nHeads = cfg.nHeads;
    this.inputHooks = this.facts.learnedPositions ? ['hook_embed', 'hook_pos_embed'] : ['hook_embed'];
  }

  /** blocks.l.attn.hook_result: [b, p, H, d], head h's output at [:, :, h] (before any post-attention norm). */
  headOutput(l: number): HookName {
    return blockHook(l, 'attn.hook_result');
  }

  /** blocks.l.attn.hook_z: [b, p, H, d_head]; head h's output is z[:, :, h] · W_O[h]. */
  headValues(l: number): HookName {
    return blockHook(l, 'attn.hook_z');
  }

  /** blocks.l.hook_mlp_out: [b, p, d]. */
  mlpOutput(l: number): HookName {
    return blockHook(l, 'hook_mlp_out');
  }

  /** blocks.l.mlp.hook_post: [b, p, d_mlp], one value per neuron. */
  mlpNeurons(l: number): HookName {
    return blockHook(l, 'mlp.hook_post');
  }

  /** blocks.l.hook_{q,k,v}_input: [b, p, H, d], head h's own input at [:, :, h]. */
  headInput(l: number, which: 'q' | 'k' | 'v'): HookName {
    return blockHook(l, `hook_${which}_input`);
  }

  /** blocks.l.attn.hook_{q,k,v}: [b, p, H, d_head], the projection before any rotation. */
  headProjection(l: number, which: 'q' | 'k' | 'v'): HookName {
    return blockHook(l, `attn.hook_${which}`);
  }

  /** blocks.l.hook_mlp_in: [b, p, d] (the block input in a parallel block). */
  mlpInput(l: number): HookName {
    return blockHook(l, 'hook_mlp_in');
  }

  /** The logits' input: the final residual, blocks.{L-1}.hook_resid_post. */
  get logitsInput(): HookName {
    return blockHook(this.nLayers - 1, 'hook_resid_post');
  }

  /** blocks.l.hook_resid_pre. */
  residPre(l: number): HookName {
    return blockHook(l, 'hook_resid_pre');
  }

  /**
   * Hooks that call `fn` with the input node's output [b, p, d] once it is complete (after the
   * last of inputHooks), set on `hooks`. The activations are the forward pass's: do not dispose.
   */
  onInput(hooks: Map<HookName, HookFn>, fn: (input: tf.Tensor) => void): void {
    if (this.inputHooks.length === 1) {
      hooks.set(this.inputHooks[0], (x) => {
        fn(x);
      });
      return;
    }
    let embed: tf.Tensor | undefined;
    hooks.set('hook_embed', (x) => {
      embed = x;
    });
    hooks.set('hook_pos_embed', (x) => {
      fn(tf.add(embed!, x));
    });
  }

  /** The input node's output from captured activations of inputHooks: [b, p, d]. Call inside tf.tidy. */
  inputFrom(cache: ReadonlyMap<HookName, tf.Tensor>): tf.Tensor {
    const parts = this.inputHooks.map((n) => {
      const t = cache.get(n);
      if (!t) throw new Error(`binding: '${n}' was not captured`);
      return t;
    });
    return parts.length === 1 ? parts[0] : tf.add(parts[0], parts[1]);
  }
}

/** A graph bound to a model's hooks: every source's and destination's hook and dense row. */
export class GraphBinding extends HookBinding {
  readonly graph: CircuitGraph;
  readonly layers: readonly LayerSlots[];
  /** The logits' destination row. */
  readonly logitsRow: number;

  constructor(cfg: ModelConfig, graph: CircuitGraph) {
    super(cfg);
    const s = graph.shape;
    if (s.nLayers !== cfg.nLayers || s.nHeads !== cfg.nHeads || s.hasMlp === cfg.attnOnly || (s.parallelAttnMlp === true) !== this.facts.parallel) {
      const describe = (parallel: boolean) => (parallel ? ', parallel attention + MLP' : '');
      throw new CircuitryError(
        `the graph (${s.nLayers} layers, ${s.nHeads} heads${s.hasMlp ? '' : ', no MLPs'}${describe(s.parallelAttnMlp === true)}) does not fit the model (${cfg.nLayers} layers, ${cfg.nHeads} heads${cfg.attnOnly ? ', attention-only' : ''}${describe(this.facts.parallel)})`,
      );
    }
    this.graph = graph;
    const H = cfg.nHeads;
    const layers: LayerSlots[] = [];
    for (let l = 0; l < cfg.nLayers; l++) {
      const srcBefore = graph.sourceIndex(`a${l}.h0`);
      const mlp = s.hasMlp ? graph.destinationIndex(`m${l}`) : -1;
      layers.push({
        heads: graph.destinationIndex(s.qkv ? `a${l}.h0<q>` : `a${l}.h0`),
        mlp,
        srcBefore,
        mlpSources: mlp < 0 ? -1 : graph.destinations[mlp].srcCount,
      });
      if (mlp >= 0 && graph.destinations[mlp].srcCount !== (this.facts.parallel ? srcBefore : srcBefore + H)) throw new Error('binding: MLP sources do not match the block layout');
    }
    this.layers = layers;
    this.logitsRow = graph.destinationIndex('logits');
  }

  /** Whether layer l's MLP reads layer l's heads (false in a parallel block). */
  mlpReadsHeads(l: number): boolean {
    const r = this.layers[l];
    return r.mlp >= 0 && r.mlpSources > r.srcBefore;
  }

  /** The hook a source's output is read at, and its head index (-1 unless a head). */
  sourceHook(src: number): { hook: HookName; head: number } {
    const s = this.graph.sources[src];
    if (s.kind === 'input') return { hook: this.inputHooks[this.inputHooks.length - 1], head: -1 };
    return s.kind === 'head' ? { hook: this.headOutput(s.layer), head: s.head } : { hook: this.mlpOutput(s.layer), head: -1 };
  }

  /** Whether source `src` is a head whose output is patched inside its layer's post-attention norm. */
  insideNorm(src: number): boolean {
    return this.facts.headsInsideNorm && this.graph.sources[src].kind === 'head';
  }

  /** Every hook the sources are made of (input's parts, then per layer hook_result and hook_mlp_out). */
  sourceHooks(): HookName[] {
    const names: HookName[] = [...this.inputHooks];
    for (let l = 0; l < this.nLayers; l++) {
      names.push(this.headOutput(l));
      if (this.graph.shape.hasMlp) names.push(this.mlpOutput(l));
    }
    return names;
  }

  /**
   * Source outputs [nSrc, b, p, d] (input, a0.h0 … a0.h{H-1}, m0, …) from captured activations
   * of sourceHooks(). Call inside tf.tidy.
   */
  sourcesFrom(cache: ReadonlyMap<HookName, tf.Tensor>): tf.Tensor {
    const get = (n: HookName) => {
      const t = cache.get(n);
      if (!t) throw new Error(`binding: '${n}' was not captured`);
      return t;
    };
    const parts: tf.Tensor[] = [tf.expandDims(this.inputFrom(cache), 0)];
    for (let l = 0; l < this.nLayers; l++) {
      parts.push(tf.transpose(get(this.headOutput(l)), [2, 0, 1, 3]));
      if (this.graph.shape.hasMlp) parts.push(tf.expandDims(get(this.mlpOutput(l)), 0));
    }
    return tf.concat(parts, 0);
  }
}

const cache = new WeakMap<CircuitGraph, Map<ModelConfig, GraphBinding>>();

/** The binding of a graph to a model's hooks (one per graph and config). */
export function bindGraph(cfg: ModelConfig, graph: CircuitGraph): GraphBinding {
  let byCfg = cache.get(graph);
  if (!byCfg) cache.set(graph, (byCfg = new Map()));
  let b = byCfg.get(cfg);
  if (!b) byCfg.set(cfg, (b = new GraphBinding(cfg, graph)));
  return b;
}
