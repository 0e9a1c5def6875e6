import { describe, it, expect, beforeAll } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The discover and evaluate commands as a user runs them: interruption, resume, stale
// checkpoints, degenerate data, and evaluate on the circuit's own dataset.

const CLI = join(process.cwd(), 'bin', 'circuitry.js');
const run = (args: string[]) => spawnSync('node', [CLI, ...args], { encoding: 'utf8' });

let dir: string;
/** A learned circuit (mini-gpt2, IOI) in small batches: every stage runs several passes. */
function pipeline(name: string): { yaml: string; out: string; checkpoint: string } {
  const out = join(dir, `${name}.json`);
  const yaml = join(dir, `${name}.yaml`);
  writeFileSync(yaml, `model: mini-gpt2\ntask: { name: ioi, n: 16, seed: 5 }\nbatch_size: 4\noutput: ${out}\n`);
  return { yaml, out, checkpoint: join(dir, `.${name}.json.checkpoint.json`) };
}

interface Spawned {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

function start(args: string[]): Spawned {
  const child = spawn('node', [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exit = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  return { child, stdout: () => out, stderr: () => err, exit };
}

/** Sends `signal` as soon as stdout matches `pattern`; resolves with the time it was sent. */
async function signalWhen(p: Spawned, pattern: RegExp, signal: NodeJS.Signals): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = setInterval(() => {
      if (pattern.test(p.stdout())) {
        clearInterval(t);
        p.child.kill(signal);
        resolve(performance.now());
      }
    }, 10);
    void p.exit.then(() => {
      clearInterval(t);
      reject(new Error(`exited before ${pattern}: ${p.stdout()}\n${p.stderr()}`));
    });
  });
}

const circuitOf = (path: string) => {
  const f = JSON.parse(readFileSync(path, 'utf8'));
  return { edges: f.edges, metrics: f.meta.metrics, faithfulness: f.meta.faithfulness };
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'circuitry-discover-'));
});

// each spawn loads a model; on a shared 2-core machine a test takes minutes
describe('circuitry discover and evaluate', { timeout: 600_000 }, () => {
  let full: ReturnType<typeof circuitOf>;

  it('evaluate with no --task/--dataset re-creates the circuit\'s own dataset and prints the numbers discover printed', () => {
    const p = pipeline('full');
    const d = run(['discover', p.yaml, '--no-report']);
    expect(d.status, d.stderr).toBe(0);
    full = circuitOf(p.out);
    const cpr = /CPR (\d\.\d{3}), CMD (\d\.\d{3})/.exec(d.stdout)!;

    const e = run(['evaluate', p.out]);
    expect(e.status, e.stderr).toBe(0);
    expect(e.stdout).toMatch(/dataset: task ioi \(n 16, seed 5\): 16 pairs, the circuit's own dataset/);
    expect(e.stdout).toContain(`CPR ${cpr[1]}, CMD ${cpr[2]}`);

    const j = run(['evaluate', p.out, '--json']);
    expect(j.status, j.stderr).toBe(0);
    const r = JSON.parse(j.stdout);
    expect(r.dataset).toMatchObject({ task: { name: 'ioi', n: 16, seed: 5 }, own: true });
    expect(r.normalized).toBe(full.metrics.normalized);
    expect(r.faithfulness.cpr).toBe(full.faithfulness.cpr);
    expect(r.faithfulness.cmd).toBe(full.faithfulness.cmd);

    // other data is other numbers, and says so
    const o = run(['evaluate', p.out, '--task', 'ioi', '-n', '8', '--seed', '1', '--json']);
    expect(o.status, o.stderr).toBe(0);
    expect(JSON.parse(o.stdout).dataset).toMatchObject({ task: { name: 'ioi', n: 8, seed: 1 }, own: false });
    expect(JSON.parse(o.stdout).faithfulness.cpr).not.toBe(full.faithfulness.cpr);
  });

  it('Ctrl-C during screen stops within the stage, leaves a checkpoint, and a later run without --resume refuses to overwrite it', async () => {
    const p = pipeline('screen');
    const child = start(['discover', p.yaml, '--no-report']);
    // the clean and corrupted runs are done; the screen starts
    const sent = await signalWhen(child, /262 edges; logit-diff/, 'SIGINT');
    expect(await child.exit).toBe(130);
    // a measure for the lead (this shared machine's timings mean little): Ctrl-C to exit
    console.log(`[cli-discover] SIGINT during screen answered in ${((performance.now() - sent) / 1000).toFixed(2)} s`);
    expect(child.stdout()).not.toMatch(/screen \(eap-ig\):/); // the stage did not run to its end
    expect(child.stderr()).toMatch(/interrupted/);
    expect(child.stderr()).toMatch(/--resume/);
    expect(existsSync(p.checkpoint)).toBe(true);

    const again = run(['discover', p.yaml, '--no-report']);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain(`a checkpoint of an interrupted run exists at ${p.checkpoint}`);
    expect(again.stderr).toMatch(/--resume'.*--fresh'/);
    expect(existsSync(p.checkpoint)).toBe(true);
    expect(existsSync(p.out)).toBe(false);
  });

  it('Ctrl-C during verify and kill -9 after verify both leave the finished stages; --resume skips them and gives the uninterrupted circuit', async () => {
    const p = pipeline('verify');
    const first = start(['discover', p.yaml, '--no-report']);
    await signalWhen(first, /screen \(eap-ig\): \d+ candidates/, 'SIGINT');
    expect(await first.exit).toBe(130);
    expect(first.stdout()).not.toMatch(/verify: \d+ of/);
    const cp1 = JSON.parse(readFileSync(p.checkpoint, 'utf8'));
    expect(cp1.screen.scores.length).toBe(262);
    expect(cp1.verify?.complete ?? false).toBe(false);

    const second = start(['discover', p.yaml, '--no-report', '--resume']);
    await signalWhen(second, /verify: \d+ of \d+ candidates/, 'SIGKILL');
    await second.exit;
    expect(second.stdout()).toMatch(/screen \(eap-ig\): 100 candidates of 262 edges \(from the checkpoint\)/);
    const cp2 = JSON.parse(readFileSync(p.checkpoint, 'utf8'));
    expect(cp2.verify.complete).toBe(true);
    expect(cp2.verify.noise.length).toBe(100);

    const third = run(['discover', p.yaml, '--no-report', '--resume']);
    expect(third.status, third.stderr).toBe(0);
    expect(third.stdout).toMatch(/screen \(eap-ig\): .*\(from the checkpoint\)/);
    expect(third.stdout).toMatch(/verify: .*\(from the checkpoint\)/);
    expect(third.stdout).not.toMatch(/prune .*\(from the checkpoint\)/);
    expect(existsSync(p.checkpoint)).toBe(false);
    expect(circuitOf(p.out)).toEqual(full);
  });

  it('--fresh discards a checkpoint; --resume refuses another run\'s, and says when there is none', () => {
    const p = pipeline('fresh');
    writeFileSync(p.checkpoint, '{"version":3,"key":"other"}');
    const r = run(['discover', p.yaml, '--no-report', '--resume']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/belongs to a different run .* --fresh/);
    // a fast model for the fresh run
    writeFileSync(p.yaml, `model: planted-induction\ntask: induction\noutput: ${p.out}\n`);
    const f = run(['discover', p.yaml, '--no-report', '--fresh']);
    expect(f.status, f.stderr).toBe(0);
    expect(existsSync(p.checkpoint)).toBe(false);
    expect(existsSync(p.out)).toBe(true);
    const p2 = pipeline('nothing');
    const n = run(['discover', p2.yaml, '--no-report', '--resume']);
    expect(n.status).toBe(1);
    expect(n.stderr).toContain(`--resume: no checkpoint at ${p2.checkpoint}`);
  });
});

describe('degenerate data and slow backends', { timeout: 600_000 }, () => {
  let data: string;
  let out: string;
  beforeAll(() => {
    data = join(dir, 'same.jsonl');
    out = join(dir, 'same.json');
    const pair = JSON.stringify({ clean: [3, 4, 5, 6], corrupted: [3, 4, 5, 6], answer: 7, wrong: 8 });
    writeFileSync(data, `${pair}\n${pair}\n`);
  });

  it('clean == corrupted stops discover and acdc before any stage, naming both values and the floor', () => {
    const yaml = join(dir, 'same.yaml');
    writeFileSync(yaml, `model: mini-gpt2\ndataset: ${data}\noutput: ${out}\n`);
    const d = run(['discover', yaml, '--no-report']);
    expect(d.status).toBe(1);
    expect(d.stderr).toMatch(/the clean and corrupted runs give the same logit-diff \(clean (-?[\d.e+-]+), corrupted \1; \|difference\| 0\.00e\+0 is below the floor [\d.]+e-\d+\)/);
    expect(d.stdout).not.toMatch(/screen/);
    expect(existsSync(out)).toBe(false);

    const a = run(['acdc', '--model', 'mini-gpt2', '--dataset', data, '--threshold', '0.01', '--out', out]);
    expect(a.status).toBe(1);
    expect(a.stderr).toMatch(/the clean and corrupted runs give the same kl \(clean 0\.00000, corrupted 0\.00000; .* below the floor 1\.00e-6\)/);
    expect(existsSync(out)).toBe(false);
  });

  it('… and patch and attribute, unless the corrupted run is not used (zero ablation)', () => {
    const pa = run(['patch', '--model', 'mini-gpt2', '--dataset', data, '--sweep', 'heads', '--out', out]);
    expect(pa.status).toBe(1);
    expect(pa.stderr).toMatch(/same\.jsonl: the clean and corrupted runs give the same logit-diff .* below the floor/);
    const at = run(['attribute', '--model', 'mini-gpt2', '--dataset', data, '--method', 'eap-ig', '--top', '5', '--out', out]);
    expect(at.status).toBe(1);
    expect(at.stderr).toMatch(/same\.jsonl: the clean and corrupted runs give the same logit-diff .* below the floor/);
    expect(existsSync(out)).toBe(false);
    // zero ablation never uses the corrupted run: the same prompts are fine there
    const z = run(['patch', '--model', 'mini-gpt2', '--dataset', data, '--sweep', 'heads', '--ablation', 'zero', '--out', out]);
    expect(z.status, z.stderr).toBe(0);
  });

  it('--backend cpu warns that it is about 30× slower than wasm', () => {
    const r = run(['models', '--backend', 'cpu']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: the cpu backend is about 30× slower than wasm/);
    expect(run(['models']).stderr).not.toMatch(/30×/);
  });
});
