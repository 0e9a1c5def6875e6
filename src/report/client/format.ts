/** Number formatting shared by the panels, tooltips and tables. */
export function fmt(x: number | null | undefined, digits = 4): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '—';
  if (!Number.isFinite(x)) return x > 0 ? '∞' : '−∞';
  if (x === 0) return '0';
  const a = Math.abs(x);
  const s = a < 1e-3 || a >= 1e5 ? x.toExponential(digits - 2) : String(Number(x.toPrecision(digits)));
  return s.replace('-', '−');
}

export function fmtSigned(x: number | null | undefined, digits = 4): string {
  if (x !== null && x !== undefined && x > 0) return `+${fmt(x, digits)}`;
  return fmt(x, digits);
}

export function fmtPct(x: number | null | undefined, digits = 1): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  return `${(x * 100).toFixed(digits).replace('-', '−')}%`;
}

export function fmtCount(n: number): string {
  return n.toLocaleString('en-US');
}
