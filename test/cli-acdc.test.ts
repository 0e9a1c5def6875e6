import { describe, it, expect } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TINY } from './helpers/fixtures.js';

const CLI = join(process.cwd(), 'bin', 'circuitry.js');
const base = ['acdc', '--model', join(TINY, 'model'), '--dataset', join(TINY, 'dataset.jsonl'), '--threshold', '0.001', '--metric', 'kl', '--order', 'auto-circuit'];

function circuitOf(path: string) {
  const f = JSON.parse(readFileSync(path, 'utf8'));
  return { edges: f.edges, steps: f.meta.acdc.steps };
}

describe('circuitry acdc', () => {
  it('an interrupted run (SIGINT) resumed with --resume gives the same circuit as an uninterrupted one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'circuitry-acdc-'));
    const full = spawnSync('node', [CLI, ...base, '--out', join(dir, 'full.json')], { encoding: 'utf8' });
    expect(full.status, full.stderr).toBe(0);

    const out = join(dir, 'resumed.json');
    const checkpoint = `${out}.checkpoint.json`;
    const child = spawn('node', [CLI, ...base, '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    // interrupt once the first destination's checkpoint exists
    await new Promise<void>((resolve, reject) => {
      const t = setInterval(() => {
        if (existsSync(checkpoint)) {
          clearInterval(t);
          child.kill('SIGINT');
          resolve();
        }
      }, 20);
      child.on('exit', () => {
        clearInterval(t);
        reject(new Error(`finished before it could be interrupted: ${stderr}`));
      });
    });
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(130);
    expect(stderr).toMatch(/--resume/);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(checkpoint)).toBe(true);

    const resumed = spawnSync('node', [CLI, ...base, '--out', out, '--resume'], { encoding: 'utf8' });
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(circuitOf(out)).toEqual(circuitOf(join(dir, 'full.json')));
    expect(existsSync(checkpoint)).toBe(false);
  });

  it('rejects a bad threshold and an unknown order with clear messages and writes nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'circuitry-acdc-'));
    const r1 = spawnSync('node', [CLI, ...base.slice(0, 5), '--threshold', '-1', '--out', join(dir, 'x.json')], { encoding: 'utf8' });
    expect(r1.status).not.toBe(0);
    expect(r1.stderr).toMatch(/--threshold: expected a non-negative number, got '-1'/);
    const r2 = spawnSync('node', [CLI, ...base.slice(0, -2), '--order', 'random', '--out', join(dir, 'x.json')], { encoding: 'utf8' });
    expect(r2.status).not.toBe(0);
    expect(r2.stderr).toMatch(/--order: unknown ACDC order 'random' \(expected acdc or auto-circuit\)/);
    expect(existsSync(join(dir, 'x.json'))).toBe(false);
  });

  it('--stop-after stops at a node boundary with exit 0 and a checkpoint; --resume finishes it; evaluate names the data it used', () => {
    const dir = mkdtempSync(join(tmpdir(), 'circuitry-acdc-'));
    const full = join(dir, 'full.json');
    expect(spawnSync('node', [CLI, ...base, '--out', full], { encoding: 'utf8' }).status).toBe(0);
    const out = join(dir, 'stopped.json');
    const stopped = spawnSync('node', [CLI, ...base, '--out', out, '--stop-after', '3'], { encoding: 'utf8' });
    expect(stopped.status, stopped.stderr).toBe(0);
    expect(stopped.stdout).toMatch(/stopped after \d+ edges \(--stop-after 3\); the checkpoint is .*stopped\.json\.checkpoint\.json/);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.checkpoint.json`)).toBe(true);
    const resumed = spawnSync('node', [CLI, ...base, '--out', out, '--resume'], { encoding: 'utf8' });
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(circuitOf(out)).toEqual(circuitOf(full));

    // the circuit records its data (meta.config), so evaluate needs no --dataset and says which it used
    const ev = spawnSync('node', [CLI, 'evaluate', out, '--metric', 'kl'], { encoding: 'utf8' });
    expect(ev.status, ev.stderr).toBe(0);
    expect(ev.stdout).toContain(`dataset: ${join(TINY, 'dataset.jsonl')}: 16 pairs, the circuit's own dataset`);
  });
});
