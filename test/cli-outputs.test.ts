import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { circuitry } from './helpers/cli.js';
import { randomCircuit } from './helpers/report-fixtures.js';
import { checkOutputPath, writeFileAtomic } from '../src/io/files.js';

/**
 * Every output path is checked before any model loads: a path under /proc or /sys, a folder, a
 * path under a regular file, an unwritable folder each fail at once with a message naming the
 * flag and the path, and leave nothing behind. "Before any model loads" is read off stdout:
 * the model commands print the backend line only once the flags have passed.
 */
describe('output paths are checked before any work', () => {
  let dir: string;
  let circuit: string;
  let plainFile: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'circuitry-outputs-'));
    circuit = join(dir, 'c.json');
    writeFileSync(circuit, JSON.stringify(randomCircuit(2, 4, 1, 20)));
    plainFile = join(dir, 'plain.txt');
    writeFileSync(plainFile, 'a file, not a folder\n');
  });
  afterAll(() => {
    chmodSync(dir, 0o755);
    rmSync(dir, { recursive: true, force: true });
  });

  const commands: Record<string, (out: string) => string[]> = {
    acdc: (out) => ['acdc', '--model', 'mini-gpt2', '--task', 'ioi', '-n', '4', '--threshold', '0.01', '--out', out],
    patch: (out) => ['patch', '--model', 'mini-gpt2', '--task', 'ioi', '-n', '4', '--sweep', 'heads', '--out', out],
    attribute: (out) => ['attribute', '--model', 'mini-gpt2', '--task', 'ioi', '-n', '4', '--out', out],
    search: (out) => ['search', '--model', 'mini-gpt2', '--task', 'ioi', '-n', '4', '--out', out],
    direction: (out) => ['direction', '--model', 'mini-gpt2', '--task', 'ioi', '-n', '4', '--site', 'a1.h2', '--out', out],
    trace: (out) => ['trace', '--model', 'mini-gpt2', '--prompt', 'When Mary and John went to the store , John gave a drink to', '--answer', 'Mary', '--out', out],
    steer: (out) => ['steer', '--model', 'mini-gpt2', '--layer', '1', '--positive-prompt', 'Mary', '--negative-prompt', 'John', '--strength', '1', '--prompt', 'When Mary', '--out', out],
    run: (out) => ['run', '--model', 'mini-gpt2', '--prompt', 'When Mary', '--logits-out', out],
    report: (out) => ['report', circuit, '--out', out],
    compare: (out) => ['compare', circuit, circuit, '--out', out],
    tasks: (out) => ['tasks', 'ioi', '-n', '4', '--out', out],
  };

  function expectFastFailure(argv: string[], message: string | RegExp, path: string): void {
    const r = circuitry(argv, dir, 60_000);
    expect(r.status, `${argv.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stdout, 'no model was loaded').not.toMatch(/backend:/u);
    expect(existsSync(path)).toBe(false);
    // no temporary files either
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp') || f.startsWith('.circuitry-probe'))).toEqual([]);
  }

  for (const [name, argv] of Object.entries(commands)) {
    it(`${name}: /proc, a folder and a path under a file fail at once`, () => {
      expectFastFailure(argv('/proc/x/o.json'), /'\/proc\/x\/o\.json' is under \/proc, a kernel filesystem/u, '/proc/x/o.json');
      const folder = join(dir, `${name}-folder`);
      mkdirSync(folder);
      expectFastFailure(argv(folder), new RegExp(`'${folder}' is a folder; give a file name`, 'u'), join(folder, 'x'));
      const under = join(plainFile, 'sub', 'o.json');
      expectFastFailure(argv(under), /is a file, not a folder/u, under);
    });
  }

  it('a pipeline whose output.graph cannot be written fails before the model loads (discover and start)', () => {
    const yaml = join(dir, 'bad.yaml');
    writeFileSync(yaml, `model: mini-gpt2\ntask: ioi\noutput:\n  graph: /sys/x/ioi.json\n  report: ${join(dir, 'r.html')}\n`);
    const r = circuitry(['discover', yaml], dir, 60_000);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/bad\.yaml: output\.graph: '\/sys\/x\/ioi\.json' is under \/sys/u);
    const yaml2 = join(dir, 'bad2.yaml');
    writeFileSync(yaml2, `model: mini-gpt2\ntask: ioi\noutput:\n  graph: ${join(dir, 'g.json')}\n  report: ${dir}\n`);
    const s = circuitry(['start', '--pipelines', yaml2], dir, 60_000);
    expect(s.status).toBe(1);
    expect(s.stderr).toMatch(/output\.report: .* is a folder/u);
    expect(s.stdout).not.toMatch(/backend/u);
    expect(existsSync(join(dir, 'g.json'))).toBe(false);
  });

  it.skipIf(process.getuid?.() === 0)('an unwritable folder fails at once (not as root, who may write anywhere)', () => {
    const ro = join(dir, 'read-only');
    mkdirSync(ro);
    chmodSync(ro, 0o555);
    expectFastFailure(commands.patch(join(ro, 'o.json')), /is not writable|does not accept files/u, join(ro, 'o.json'));
  });

  it('the library: checkOutputPath never hangs and writeFileAtomic refuses /proc and /sys', () => {
    const t0 = performance.now();
    expect(() => checkOutputPath('/proc/self/x/y.json', '--out')).toThrow(/under \/proc/u);
    expect(() => checkOutputPath('/sys/kernel/x.json', '--out')).toThrow(/under \/sys/u);
    expect(() => writeFileAtomic('/proc/x/o.json', 'x')).toThrow(/will not write under \/proc/u);
    expect(() => checkOutputPath('', '--out')).toThrow(/--out: the output path is empty/u);
    expect(performance.now() - t0).toBeLessThan(1000);
    // a new folder that can be created is fine, and nothing is created by the check
    const fresh = join(dir, 'new', 'deeper', 'o.json');
    expect(() => checkOutputPath(fresh, '--out')).not.toThrow();
    expect(existsSync(join(dir, 'new'))).toBe(false);
  });
});
