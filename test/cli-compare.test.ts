import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { circuitry } from './helpers/cli.js';
import { randomCircuit } from './helpers/report-fixtures.js';

/** `circuitry compare` through the real parser (main.ts sets duplicate-arguments-array: false). */
describe('circuitry compare (spawned)', () => {
  let dir: string;
  const files: string[] = [];
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'circuitry-compare-'));
    for (const [i, name] of ['ioi', 'induction', 'greater-than'].entries()) {
      const f = join(dir, `${name}.json`);
      writeFileSync(f, JSON.stringify(randomCircuit(2, 4, i + 1, 20 + 10 * i)));
      files.push(f);
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const cases: [string, (out: string) => string[], number][] = [
    ['two files, --out last', (out) => ['compare', files[0], files[1], '--out', out], 2],
    ['two files, --out first', (out) => ['compare', '--out', out, files[0], files[1]], 2],
    ['three files, --out last', (out) => ['compare', files[0], files[1], files[2], '--out', out], 3],
    ['three files, --out first', (out) => ['compare', '--out', out, files[0], files[1], files[2]], 3],
    ['three files, --out between', (out) => ['compare', files[0], '--out', out, files[1], files[2]], 3],
  ];
  for (const [name, argv, n] of cases) {
    it(`${name}: one page with every circuit`, () => {
      const out = join(dir, `${name.replace(/\W+/gu, '-')}.html`);
      const r = circuitry(argv(out));
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain(`${n} circuits`);
      const html = readFileSync(out, 'utf8');
      for (const f of files.slice(0, n)) expect(html).toContain(f.split('/').pop()!.replace('.json', ''));
    });
  }

  it('one file is an error naming the count; nothing is written', () => {
    const out = join(dir, 'one.html');
    const r = circuitry(['compare', files[0], '--out', out]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('compare: expected at least two circuit files, got 1');
    expect(existsSync(out)).toBe(false);
  });

  it('a folder as --out fails before reading the circuits', () => {
    const r = circuitry(['compare', files[0], files[1], '--out', dir]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`--out: '${dir}' is a folder; give a file name`);
  });
});
