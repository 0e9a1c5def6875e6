/**
 * Called by long library loops: `done` of `total` units of work are finished. The library only
 * reports progress; drawing it (src/cli/progress.ts) is the CLI's business.
 */
export type OnProgress = (done: number, total: number) => void;
