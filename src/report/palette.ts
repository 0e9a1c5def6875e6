/**
 * Colours shared by the page's CSS, its legend and the WebGL drawing. Edge sign uses a
 * blue/orange pair that stays distinct under the common colour-vision deficiencies.
 */
export const PALETTE = {
  positive: '#2563eb',
  negative: '#ea580c',
  node: { input: '#475569', head: '#0f766e', mlp: '#7c3aed', logits: '#b45309' },
  inactiveNode: '#d5dbe3',
  fadedEdge: 'rgba(148,163,184,0.16)',
  /** Comparison drawings: an edge or node in every circuit, in some, or in this one only. */
  sharedAll: '#0f766e',
  sharedSome: '#7c3aed',
  unique: '#ea580c',
  text: '#0f172a',
  muted: '#64748b',
  border: '#e2e8f0',
  background: '#f5f7fa',
  accent: '#2563eb',
} as const;

/** Dash pattern of each head input (on-screen pixels: dash, gap); none = solid. */
export const PORT_DASH: Record<string, [number, number] | null> = {
  '': null,
  q: null,
  k: [7, 4],
  v: [2, 3],
};
