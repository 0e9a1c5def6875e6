/**
 * The one shard abstraction: a list of work items (chunks of prompts) split into contiguous
 * shards, one per worker. Results are merged in item order, so they do not depend on how many
 * shards there were (see patching/patcher.ts combineChunkValues).
 */

export interface Shard {
  /** The shard's number (0-based), which names it in messages. */
  readonly index: number;
  /** Items [start, end). */
  readonly start: number;
  readonly end: number;
}

/** `n` items in at most `workers` contiguous shards of near-equal size (none empty). */
export function shardRanges(n: number, workers: number): Shard[] {
  const k = Math.max(1, Math.min(workers, n));
  const out: Shard[] = [];
  for (let i = 0, start = 0; i < k; i++) {
    const size = Math.floor(n / k) + (i < n % k ? 1 : 0);
    out.push({ index: i, start, end: start + size });
    start += size;
  }
  return out;
}

/** The examples [from, to) of the chunks [start, end) when chunks hold `batchSize` examples. */
export function exampleRange(shard: Shard, batchSize: number, n: number): { from: number; to: number } {
  return { from: shard.start * batchSize, to: Math.min(n, shard.end * batchSize) };
}
