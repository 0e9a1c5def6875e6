import { CircuitryError, checkpointPause } from '../errors.js';
import { type AttributionRun, eap, eapIg, eapIgActivations, eapIgActivationsRun, eapIgRun, eapRun } from './eap.js';
import type { AttributionInput, AttributionOptions, EdgeAttribution } from './types.js';

/**
 * Edge attribution algorithms as records {key, name, run} with one signature (input, options) →
 * scores; variants (direction, ablation, steps, gradient path) are options, not copies.
 */
export interface AttributionMethod {
  readonly key: string;
  readonly name: string;
  /** One line for help output. */
  readonly describe: string;
  /** Whether `steps` applies. */
  readonly integrated: boolean;
  run(input: AttributionInput, options?: AttributionOptions): EdgeAttribution;
  /** The same run as a generator that yields after every chunk of prompts (or mask value). */
  steps(input: AttributionInput, options?: AttributionOptions): AttributionRun;
}

export const ATTRIBUTION_METHODS = Object.freeze({
  eap: {
    key: 'eap',
    name: 'Edge Attribution Patching',
    describe: 'EAP (Syed et al. 2023): (a_patch − a_run) · ∂M/∂x_d at the run; one forward pass of the other run and one forward + backward pass',
    integrated: false,
    run: eap,
    steps: eapRun,
  },
  'eap-ig': {
    key: 'eap-ig',
    name: 'EAP with integrated gradients (inputs)',
    describe: 'EAP-IG (Hanna et al. 2024): gradients averaged over m steps of input embeddings interpolated from the patch run to the run',
    integrated: true,
    run: eapIg,
    steps: eapIgRun,
  },
  'eap-ig-activations': {
    key: 'eap-ig-activations',
    name: 'EAP with integrated gradients (activations)',
    describe: "auto-circuit's integrated gradients on edge masks: minus the mask gradient averaged over m mask values k/m",
    integrated: true,
    run: eapIgActivations,
    steps: eapIgActivationsRun,
  },
} as const satisfies Record<string, AttributionMethod>);

/** A method's name: a key of the registry. */
export type AttributionMethodKey = keyof typeof ATTRIBUTION_METHODS;

/** The methods' names, from the registry (for flags, config schemas and messages). */
export const ATTRIBUTION_METHOD_KEYS = Object.keys(ATTRIBUTION_METHODS) as [AttributionMethodKey, ...AttributionMethodKey[]];

/** The method called `key`; an error listing the methods otherwise. */
export function attributionMethod(key: string, where = 'attribution method'): AttributionMethod {
  if (!(ATTRIBUTION_METHOD_KEYS as readonly string[]).includes(key)) {
    throw new CircuitryError(`${where}: unknown method '${key}' (expected one of ${ATTRIBUTION_METHOD_KEYS.join(', ')})`);
  }
  return ATTRIBUTION_METHODS[key as AttributionMethodKey] as AttributionMethod;
}

/** Scores every edge of the graph with the named method. */
export function attributeEdges(input: AttributionInput, method: string, options: AttributionOptions = {}): EdgeAttribution {
  return checkedMethod(method, options).run(input, options);
}

/**
 * attributeEdges, yielding to the event loop after every chunk of prompts: when `signal` fires
 * (Ctrl-C) it releases its tensors and throws InterruptedError. Same scores.
 */
export async function attributeEdgesAsync(input: AttributionInput, method: string, options: AttributionOptions & { signal?: AbortSignal } = {}): Promise<EdgeAttribution> {
  const run = checkedMethod(method, options).steps(input, options);
  try {
    await checkpointPause(options.signal); // a Ctrl-C that came before the first chunk
    for (;;) {
      const r = run.next();
      if (r.done) return r.value;
      await checkpointPause(options.signal);
    }
  } finally {
    run.return(undefined as never);
  }
}

function checkedMethod(method: string, options: AttributionOptions): AttributionMethod {
  const m = attributionMethod(method);
  if (!m.integrated && options.steps !== undefined && options.steps !== 1) {
    throw new CircuitryError(`steps: method '${m.key}' takes no integration steps (only eap-ig and eap-ig-activations do)`);
  }
  return m;
}
