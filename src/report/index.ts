/** Interactive HTML reports of circuits and comparisons of circuits (single self-contained files). */
export { renderComparison, renderReport, safeJson } from './render.js';
export type { CompareInput, ReportOptions } from './render.js';
export { buildComparisonData, buildReportData, iou } from './data.js';
export { readCircuitJson, writeComparison, writeReport } from './files.js';
export type { ComparisonData, PageData, ReportData } from './types.js';
export { renderLiveComparison, renderLiveReport } from './render.js';
export { buildLivePayload, writeLiveComparison, writeLiveReport, LIVE_MAX_MB, type LiveInput, type LiveOptions } from './live.js';
export type { LiveData, LivePayload } from './live-types.js';
