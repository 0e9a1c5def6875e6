import { PALETTE } from './palette.js';

/** The page's stylesheet (inlined): light theme, system fonts, cards on a pale background. */
export const STYLES = /* css */ `
:root {
  --bg: ${PALETTE.background};
  --card: #ffffff;
  --text: ${PALETTE.text};
  --muted: ${PALETTE.muted};
  --border: ${PALETTE.border};
  --accent: ${PALETTE.accent};
  --pos: ${PALETTE.positive};
  --neg: ${PALETTE.negative};
  --radius: 10px;
  --mono: ui-monospace, "SF Mono", "JetBrains Mono", Menlo, Consolas, "DejaVu Sans Mono", monospace;
  color-scheme: light;
}
* { box-sizing: border-box; }
html, body { margin: 0; padding: 0; }
body {
  background: var(--bg);
  color: var(--text);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "Liberation Sans", Arial, sans-serif;
  -webkit-font-smoothing: antialiased;
}
h1, h2, h3 { margin: 0; font-weight: 600; letter-spacing: -0.01em; }
h1 { font-size: 20px; }
h2 { font-size: 13px; text-transform: uppercase; letter-spacing: 0.06em; color: var(--muted); margin-bottom: 12px; }
h3 { font-size: 13px; margin-bottom: 6px; }
.muted { color: var(--muted); }
.mono { font-family: var(--mono); font-size: 12.5px; }
button, select, input { font: inherit; color: inherit; }

header.top {
  display: flex; align-items: center; justify-content: space-between; gap: 16px;
  padding: 14px 24px; background: var(--card); border-bottom: 1px solid var(--border);
}
header.top p { margin: 2px 0 0; font-size: 13px; }
.brand { font-weight: 600; font-size: 13px; color: var(--muted); display: flex; align-items: center; gap: 8px; white-space: nowrap; }
.brand-mark { width: 18px; height: 18px; border-radius: 5px; background: linear-gradient(135deg, var(--pos), #0f766e); }

.layout { display: grid; grid-template-columns: minmax(0, 1fr) 340px; gap: 16px; padding: 16px 24px 0; align-items: start; }
.panels { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px; padding: 16px 24px 24px; }
.panels .wide { grid-column: 1 / -1; }
.side { display: flex; flex-direction: column; gap: 16px; min-width: 0; }
.card { background: var(--card); border: 1px solid var(--border); border-radius: var(--radius); padding: 16px; min-width: 0; }
.compare-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; padding: 16px 24px 0; }
@media (max-width: 1100px) {
  .layout { grid-template-columns: minmax(0, 1fr); }
  .panels { grid-template-columns: minmax(0, 1fr); }
}

.graph-card { padding: 0; overflow: hidden; display: flex; flex-direction: column; }
.toolbar { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 12px; padding: 10px 14px; border-bottom: 1px solid var(--border); }
.toolbar label { display: inline-flex; align-items: center; gap: 6px; color: var(--muted); font-size: 13px; }
.toolbar select, .toolbar input[type=search] {
  border: 1px solid var(--border); border-radius: 7px; padding: 4px 8px; background: #fff; color: var(--text);
}
.toolbar input[type=search] { width: 140px; }
.toolbar input[type=range] { width: 140px; accent-color: var(--accent); }
.threshold { display: inline-flex; align-items: center; gap: 10px; }
.threshold-value { font-family: var(--mono); font-size: 12px; color: var(--muted); min-width: 100px; }
.circuit-head { min-width: 0; }
.circuit-sub { display: block; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; font-size: 12.5px; }
.edge-count { font-size: 12px; font-weight: 600; padding: 2px 9px; border-radius: 999px; background: #eef2ff; color: #3730a3; white-space: nowrap; }
.spacer { flex: 1; }
.seg { display: inline-flex; border: 1px solid var(--border); border-radius: 7px; overflow: hidden; }
.seg button { border: 0; background: #fff; padding: 4px 10px; cursor: pointer; color: var(--muted); }
.seg button + button { border-left: 1px solid var(--border); }
.seg button[aria-pressed=true] { background: #eef2ff; color: #3730a3; font-weight: 600; }

.graph-wrap { position: relative; }
.graph { width: 100%; height: 620px; background: #fff; }
.graph-empty {
  position: absolute; inset: 0; display: flex; flex-direction: column; align-items: center; justify-content: center; gap: 6px;
  background: rgba(255, 255, 255, 0.92); text-align: center; padding: 24px; pointer-events: none;
}
.graph-empty b { font-size: 18px; }
.graph-empty span { color: var(--muted); max-width: 460px; }
.warnings { margin-top: 12px; padding: 10px 12px; border: 1px solid #f59e0b; background: #fffbeb; border-radius: 8px; font-size: 13px; }
.warnings h3 { font-size: 13px; margin-bottom: 4px; }
.warnings li { margin-left: 16px; }
.graph-sm { height: 370px; }
.legend {
  display: flex; flex-wrap: wrap; align-items: center; gap: 4px 14px;
  padding: 8px 14px; border-top: 1px solid var(--border); background: #fbfcfd; font-size: 12px; color: var(--muted);
}
.legend-note { margin-left: auto; font-style: italic; }
.legend span { display: inline-flex; align-items: center; gap: 5px; white-space: nowrap; }
.legend .dot { width: 10px; height: 10px; border-radius: 50%; display: inline-block; }
.legend svg { display: block; }
.legend .sep { width: 1px; height: 14px; background: var(--border); }
.hint { position: absolute; right: 12px; top: 10px; font-size: 12px; color: var(--muted); pointer-events: none; }

.tooltip {
  position: absolute; z-index: 10; pointer-events: none; max-width: 340px; min-width: 200px;
  background: #fff; border: 1px solid var(--border); border-radius: 8px; padding: 9px 11px;
  box-shadow: 0 8px 24px rgba(15, 23, 42, 0.12); font-size: 12.5px;
}
.tooltip[hidden] { display: none; }
.item-title { font-family: var(--mono); font-weight: 600; font-size: 13px; word-break: break-all; }
.badge { display: inline-block; font-size: 11px; font-weight: 600; padding: 1px 7px; border-radius: 999px; background: #f1f5f9; color: var(--muted); margin-left: 6px; vertical-align: 1px; }
.badge.in { background: #ecfdf5; color: #047857; }
.kv { display: grid; grid-template-columns: auto 1fr; gap: 3px 12px; margin: 8px 0 0; }
.kv dt { color: var(--muted); }
.kv dd { margin: 0; font-family: var(--mono); font-size: 12.5px; text-align: right; word-break: break-all; }
.kv.left dd { text-align: left; font-family: inherit; font-size: inherit; word-break: normal; overflow-wrap: anywhere; }
.neighbours { margin-top: 8px; }
.neighbours h3 { font-size: 12px; color: var(--muted); font-weight: 600; margin: 6px 0 4px; }
.chips { display: flex; flex-wrap: wrap; gap: 4px; }
.chip { font-family: var(--mono); font-size: 11.5px; padding: 1px 6px; border-radius: 5px; background: #f1f5f9; border: 1px solid var(--border); color: var(--text); }
button.chip { cursor: pointer; }
button.chip:hover { border-color: var(--accent); }

.metric-cards { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 8px; }
.metric { border: 1px solid var(--border); border-radius: 8px; padding: 8px 10px; }
.metric .label { font-size: 12px; color: var(--muted); }
.metric .value { font-family: var(--mono); font-size: 17px; font-weight: 600; }
.metric.hero { grid-column: 1 / -1; }
.bar { height: 6px; border-radius: 3px; background: #eef2f7; margin-top: 6px; overflow: hidden; }
.bar > div { height: 100%; background: var(--accent); border-radius: 3px; }
.sub { margin-top: 12px; }

details summary { cursor: pointer; color: var(--muted); font-size: 13px; margin-top: 10px; }
pre.config { font-family: var(--mono); font-size: 12px; background: #f8fafc; border: 1px solid var(--border); border-radius: 8px; padding: 10px; overflow: auto; max-height: 320px; }

.stats { display: flex; gap: 10px; margin-bottom: 8px; flex-wrap: wrap; }
.stat { border: 1px solid var(--border); border-radius: 8px; padding: 4px 10px; font-size: 12px; color: var(--muted); }
.stat b { font-family: var(--mono); color: var(--text); font-size: 14px; margin-left: 4px; }
svg.chart { width: 100%; height: auto; display: block; overflow: visible; }
svg.chart text { font-size: 11px; fill: var(--muted); font-family: inherit; }
svg.chart .axis { stroke: #cbd5e1; stroke-width: 1; }
svg.chart .grid { stroke: #eef2f7; stroke-width: 1; }
.sweeps { display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); gap: 20px; }
.sweep h3 span { color: var(--muted); font-weight: 400; }
canvas.heat { width: 100%; image-rendering: pixelated; border: 1px solid var(--border); }

.table-wrap { overflow: auto; max-height: 520px; border: 1px solid var(--border); border-radius: 8px; }
table.data { border-collapse: collapse; width: 100%; font-size: 13px; }
table.data th, table.data td { padding: 6px 10px; border-bottom: 1px solid #f1f5f9; text-align: right; white-space: nowrap; }
table.data th:first-child, table.data td:first-child { text-align: right; color: var(--muted); width: 1%; }
table.data td.name, table.data th.name { text-align: left; font-family: var(--mono); font-size: 12.5px; }
table.data thead th { position: sticky; top: 0; background: #f8fafc; color: var(--muted); font-weight: 600; cursor: pointer; user-select: none; border-bottom: 1px solid var(--border); }
table.data thead th[aria-sort=ascending]::after { content: " \\25B2"; font-size: 9px; }
table.data thead th[aria-sort=descending]::after { content: " \\25BC"; font-size: 9px; }
table.data tbody tr { cursor: pointer; }
table.data tbody tr:hover { background: #f8fafc; }
table.data td.num { font-family: var(--mono); font-size: 12.5px; }
table.data.plain td:first-child, table.data.plain th:first-child { color: var(--text); width: auto; text-align: left; }
.pos { color: var(--pos); }
.neg { color: var(--neg); }
.yes { color: #047857; font-weight: 600; }

.examples { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 10px; }
.example { border: 1px solid var(--border); border-radius: 8px; padding: 10px 12px; }
.example .row { display: grid; grid-template-columns: 74px 1fr; gap: 8px; margin: 2px 0; }
.example .row .k { color: var(--muted); font-size: 12px; padding-top: 2px; }
.example .prompt { font-family: var(--mono); font-size: 12.5px; white-space: pre-wrap; word-break: break-word; }
.answer { display: inline-block; margin-left: 6px; font-family: var(--mono); font-size: 12px; padding: 0 6px; border-radius: 5px; }
.answer.right { background: #eff6ff; color: #1d4ed8; }
.answer.wrong { background: #fff7ed; color: #c2410c; }
.tokens { display: flex; flex-wrap: wrap; gap: 3px; margin-top: 6px; }
.tokens .chip { white-space: pre; }
.more { margin-top: 10px; border: 1px solid var(--border); background: #fff; border-radius: 7px; padding: 4px 12px; cursor: pointer; color: var(--muted); }

.lists { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 12px; }
.list-box { border: 1px solid var(--border); border-radius: 8px; padding: 10px; }
.list-box .chips { max-height: 180px; overflow: auto; }
footer { padding: 0 24px 24px; color: var(--muted); font-size: 12px; }
`;
