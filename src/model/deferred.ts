import type { ModelConfig } from './config.js';
import { Transformer } from './transformer.js';

/** Deferred models not built yet. */
const unbuilt = new WeakSet<Transformer>();

/**
 * A Transformer built on first use. The parent process of a worker pool often never runs the
 * model itself (every stage runs in the workers, which build their own copies from the shared
 * weights), and its tfjs copy would cost the weights' size again in wasm memory, which never
 * shrinks. Reading `cfg` or `trainable`, and disposing an unbuilt model, build nothing; any other
 * use builds it once and forwards to it.
 */
export function deferredModel(cfg: ModelConfig, build: () => Transformer): Transformer {
  let real: Transformer | undefined;
  const model = () => {
    if (!real) {
      real = build();
      unbuilt.delete(proxy);
    }
    return real;
  };
  const proxy = new Proxy(Object.create(Transformer.prototype) as Transformer, {
    get(_target, prop) {
      if (prop === 'cfg') return cfg;
      if (prop === 'trainable') return false;
      if (prop === 'dispose' && !real) return () => {};
      const m = model();
      const value: unknown = Reflect.get(m, prop, m);
      return typeof value === 'function' ? value.bind(m) : value;
    },
    set(_target, prop, value) {
      return Reflect.set(model(), prop, value);
    },
    has(_target, prop) {
      return prop in model();
    },
  });
  unbuilt.add(proxy);
  return proxy;
}

/** Whether a model (deferred or not) holds its tfjs weights yet. */
export function isBuilt(model: Transformer): boolean {
  return !unbuilt.has(model);
}
