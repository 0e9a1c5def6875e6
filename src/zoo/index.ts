import type { ZooModel } from './types.js';

export type { ZooModel, ZooTensor, ZooDataset } from './types.js';

const registry = new Map<string, ZooModel>();

/** Adds a model to the zoo (each zoo module registers its models when imported below). */
export function registerZooModel(model: ZooModel): void {
  if (registry.has(model.name)) throw new Error(`zoo model '${model.name}' registered twice`);
  registry.set(model.name, model);
}

export function zooModel(name: string): ZooModel | undefined {
  return registry.get(name);
}

export function zooModels(): ZooModel[] {
  return [...registry.values()];
}
