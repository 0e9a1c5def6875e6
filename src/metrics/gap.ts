import { CircuitryError } from '../errors.js';

/**
 * The smallest |M(clean) − M(corrupted)| a discovery or patching run can explain: 1e-6 in the
 * metric's units, or 1e-5 of the larger of the two values. Below it every recovery is 0/0 and
 * any "circuit" is noise.
 */
export function metricGapFloor(clean: number, corrupted: number): number {
  return Math.max(1e-6, 1e-5 * Math.max(Math.abs(clean), Math.abs(corrupted)));
}

/**
 * Stops a run whose clean and corrupted prompts are indistinguishable to the metric (e.g. the
 * same prompts twice): the message names both values and the floor. Call it right after the two
 * unpatched runs, before any expensive stage.
 */
export function checkMetricGap(metric: string, clean: number, corrupted: number, where = 'the dataset'): void {
  const floor = metricGapFloor(clean, corrupted);
  const gap = Math.abs(clean - corrupted);
  if (!(gap >= floor)) {
    const f = (x: number) => (Number.isFinite(x) ? x.toPrecision(6) : String(x));
    throw new CircuitryError(
      `${where}: the clean and corrupted runs give the same ${metric} (clean ${f(clean)}, corrupted ${f(corrupted)}; ` +
        `|difference| ${gap.toExponential(2)} is below the floor ${floor.toExponential(2)}): there is no behaviour to explain. ` +
        'Check that the corrupted prompts differ from the clean ones where it matters (or pick another --metric)',
    );
  }
}
