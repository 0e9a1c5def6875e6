import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCircuitFile, writeCircuitFile, writeFileAtomic } from '../graph/index.js';
import type { CircuitFile } from '../graph/index.js';
import { VERSION } from '../version.js';
import type { JobResult } from './job.js';
import type { GridValue, SweepItem, SweepPlan } from './spec.js';

/**
 * What a sweep leaves in its folder, all written by the coordinator, each file atomically:
 *   graphs/<name>.json, reports/<name>.html   one circuit and its report per pipeline
 *   sweep.json                                the manifest: per name its job key, grid values, timings
 *   results.csv, compare.html                 the table and the comparison page across results
 */

export interface ManifestEntry {
  readonly key: string;
  readonly run: string;
  readonly grid: Readonly<Record<string, GridValue>>;
  readonly graph: string;
  readonly seconds: number;
  readonly worker: string;
}

export interface Manifest {
  readonly tool: { name: 'circuitry'; version: string };
  readonly sweep: string;
  results: Record<string, ManifestEntry>;
}

export function manifestPath(plan: SweepPlan): string {
  return join(plan.outDir, 'sweep.json');
}

export function readManifest(plan: SweepPlan): Manifest {
  const path = manifestPath(plan);
  const empty: Manifest = { tool: { name: 'circuitry', version: VERSION }, sweep: plan.file, results: {} };
  if (!existsSync(path)) return empty;
  try {
    const m = JSON.parse(readFileSync(path, 'utf8')) as Manifest;
    return m && typeof m.results === 'object' ? { ...empty, results: { ...m.results } } : empty;
  } catch {
    return empty; // an unreadable manifest means nothing is known to be finished
  }
}

/** Items whose result is already on disk with the same key (for --resume). */
export function finishedOnDisk(plan: SweepPlan, manifest: Manifest): Set<string> {
  const done = new Set<string>();
  for (const item of plan.items) {
    const entry = manifest.results[item.name];
    if (entry?.key === item.key && existsSync(item.config.output.graph)) done.add(item.name);
  }
  return done;
}

/** Writes one finished pipeline: its circuit, its report (optional), then its manifest entry. */
export async function writeResult(plan: SweepPlan, manifest: Manifest, item: SweepItem, result: JobResult, report: boolean): Promise<void> {
  writeCircuitFile(item.config.output.graph, result.circuit);
  if (report) {
    const { writeReport } = await import('../report/files.js');
    writeReport(item.config.output.graph, item.config.output.report);
  }
  manifest.results[item.name] = { key: item.key, run: item.run, grid: item.grid, graph: item.config.output.graph, seconds: round(result.seconds.total, 3), worker: result.worker };
  writeFileAtomic(manifestPath(plan), JSON.stringify(manifest, null, 1) + '\n');
}

export interface SummaryRow {
  readonly name: string;
  readonly run: string;
  readonly grid: Readonly<Record<string, GridValue>>;
  readonly edges: number;
  readonly cpr?: number;
  readonly cmd?: number;
  readonly normalized?: number;
  readonly seconds?: number;
  readonly graph: string;
}

export function summaryRow(item: SweepItem, file: CircuitFile, seconds?: number): SummaryRow {
  const m = file.meta;
  return {
    name: item.name,
    run: item.run,
    grid: item.grid,
    edges: Object.values(file.edges).filter((e) => e.in_graph).length,
    cpr: m?.faithfulness?.cpr ?? undefined,
    cmd: m?.faithfulness?.cmd ?? undefined,
    normalized: m?.metrics?.normalized,
    seconds,
    graph: item.config.output.graph,
  };
}

/** The rows of every item whose circuit is on disk. */
export function summarize(plan: SweepPlan, manifest: Manifest): SummaryRow[] {
  return plan.items.filter((i) => existsSync(i.config.output.graph) && manifest.results[i.name]?.key === i.key).map((i) => summaryRow(i, readCircuitFile(i.config.output.graph).file, manifest.results[i.name]?.seconds));
}

const num = (x: number | undefined, digits: number) => (x === undefined || !Number.isFinite(x) ? '' : x.toFixed(digits));

export function summaryCsv(plan: SweepPlan, rows: readonly SummaryRow[]): string {
  const head = ['name', 'run', ...plan.gridKeys, 'edges', 'cpr', 'cmd', 'normalized', 'seconds', 'graph'];
  const lines = rows.map((r) => [r.name, r.run, ...plan.gridKeys.map((k) => String(r.grid[k])), String(r.edges), num(r.cpr, 6), num(r.cmd, 6), num(r.normalized, 6), num(r.seconds, 2), r.graph]);
  return [head, ...lines].map((l) => l.map(csvField).join(',')).join('\n') + '\n';
}

export function summaryTable(rows: readonly SummaryRow[]): string {
  const head = ['name', 'edges', 'CPR', 'CMD', 'normalized', 'seconds'];
  const body = rows.map((r) => [r.name, String(r.edges), num(r.cpr, 3), num(r.cmd, 3), num(r.normalized, 3), num(r.seconds, 1)]);
  const widths = head.map((h, j) => Math.max(h.length, ...body.map((b) => b[j].length)));
  const line = (cells: string[]) => cells.map((c, j) => (j === 0 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join('  ');
  return [line(head), ...body.map(line)].join('\n');
}

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
