import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './helpers/io-files.js';
import { freePort } from './helpers/redis-server.js';
import { CLI } from './helpers/cli-process.js';
import { SWEEP_YAML } from './helpers/sweep-fixture.js';

const run = (args: string[]) => spawnSync('node', [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });

describe('circuitry sweep: bad input fails before anything is written', () => {
  const cases: [string, string, string[], RegExp][] = [
    ['malformed YAML', 'runs: [ {model: x\n', [], /s\.yaml: invalid YAML/],
    ['unknown grid key', SWEEP_YAML.replace('prune.tau', 'prune.taux'), [], /run 'ind' with prune\.taux=0\.02: invalid pipeline config\n {2}prune: Unrecognized key: "taux"/],
    ['bad grid value', SWEEP_YAML.replace('[0.02, 0.3]', '[0.02, -1]'), [], /run 'ind' with prune\.tau=-1: invalid pipeline config\n {2}prune\.tau: Too small/],
    ['--workers 0', SWEEP_YAML, ['--workers', '0'], /--workers: expected a whole number ≥ 1, got '0'/],
    ['--workers 1.5', SWEEP_YAML, ['--workers', '1.5'], /--workers: expected a whole number ≥ 1, got '1\.5'/],
    ['--redis with another scheme', SWEEP_YAML, ['--redis', 'http://127.0.0.1:1'], /--redis: expected a redis:\/\/ or rediss:\/\/ URL/],
  ];
  for (const [what, yaml, flags, message] of cases) {
    it(what, () => {
      const dir = tempDir('circuitry-sweep-bad-');
      writeFileSync(join(dir, 's.yaml'), yaml);
      const r = run(['sweep', join(dir, 's.yaml'), '--out-dir', join(dir, 'out'), ...flags]);
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/internal error|at .*\.ts:/);
      expect(existsSync(join(dir, 'out'))).toBe(false);
    });
  }

  it('an unreachable Redis fails fast with the URL (password hidden), not a hang', async () => {
    const dir = tempDir('circuitry-sweep-bad-');
    writeFileSync(join(dir, 's.yaml'), SWEEP_YAML);
    const port = await freePort(); // nothing listens there
    const t0 = Date.now();
    const r = run(['sweep', join(dir, 's.yaml'), '--out-dir', join(dir, 'out'), '--redis', `redis://:hunter2@127.0.0.1:${port}`]);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toContain(`--redis: cannot reach Redis at redis://:***@127.0.0.1:${port} (`);
    expect(r.stderr).not.toContain('hunter2');
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(existsSync(join(dir, 'out'))).toBe(false);
    const w = run(['worker', '--redis', `redis://127.0.0.1:${port}`]);
    expect(w.status).toBe(1);
    expect(w.stderr).toContain(`cannot reach Redis at redis://127.0.0.1:${port}`);
  });
});

describe('circuitry sweep, locally', { timeout: 300_000 }, () => {
  it('runs every run × grid combination and writes the circuits, the CSV table and the comparison page; --resume keeps them', () => {
    const dir = tempDir('circuitry-sweep-');
    writeFileSync(join(dir, 's.yaml'), SWEEP_YAML);
    const out = join(dir, 'out');
    const r = run(['sweep', join(dir, 's.yaml'), '--out-dir', out, '--no-report']);
    expect(r.status, r.stderr).toBe(0);
    const names = ['ind_tau=0.02', 'ind_tau=0.3', 'and_tau=0.02', 'and_tau=0.3'];
    const csv = readFileSync(join(out, 'results.csv'), 'utf8').trim().split('\n').map((l) => l.split(','));
    expect(csv[0]).toEqual(['name', 'run', 'prune.tau', 'edges', 'cpr', 'cmd', 'normalized', 'seconds', 'graph']);
    expect(csv.slice(1).map((row) => row[0])).toEqual(names);
    for (const row of csv.slice(1)) {
      const file = JSON.parse(readFileSync(join(out, 'graphs', `${row[0]}.json`), 'utf8'));
      expect(row[1]).toBe(row[0].split('_')[0]);
      expect(Number(row[2])).toBe(file.meta.config.prune.tau);
      expect(Number(row[3])).toBe(Object.values(file.edges as Record<string, { in_graph: boolean }>).filter((e) => e.in_graph).length);
      expect(Number(row[4])).toBeCloseTo(file.meta.faithfulness.cpr, 6);
      expect(Number(row[5])).toBeCloseTo(file.meta.faithfulness.cmd, 6);
      expect(row[8]).toBe(join(out, 'graphs', `${row[0]}.json`));
      // the printed table has the same numbers
      expect(r.stdout).toMatch(new RegExp(`${row[0].replace('.', '\\.')}\\s+${row[3]}\\s+${Number(row[4]).toFixed(3)}\\s+${Number(row[5]).toFixed(3)}`));
    }
    // planted ground truth at the default τ; a high τ prunes more of it away
    const edges = (n: string) => Number(csv.find((row) => row[0] === n)![3]);
    expect(edges('ind_tau=0.02')).toBe(4);
    expect(edges('ind_tau=0.3')).toBeLessThanOrEqual(4);
    const page = readFileSync(join(out, 'compare.html'), 'utf8');
    for (const n of names) expect(page).toContain(n);
    expect(existsSync(join(out, 'reports'))).toBe(false); // --no-report

    const before = statSync(join(out, 'graphs', 'ind_tau=0.02.json')).mtimeMs;
    const again = run(['sweep', join(dir, 's.yaml'), '--out-dir', out, '--no-report', '--resume']);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toContain('(4 circuits, 4 from an earlier run)');
    expect(statSync(join(out, 'graphs', 'ind_tau=0.02.json')).mtimeMs).toBe(before);
  });
});
