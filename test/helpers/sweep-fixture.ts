/** Two planted models × two thresholds: four small pipelines. */
export const SWEEP_YAML = `runs:
  - { name: ind, model: planted-induction, task: { name: induction, n: 16 } }
  - { name: and, model: planted-and, task: { name: both-colors, n: 16 } }
grid:
  prune.tau: [0.02, 0.3]
`;
