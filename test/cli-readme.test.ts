import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, circuitry, shellWords } from './helpers/cli.js';
import { parseJsonlDataset } from '../src/tasks/index.js';
import { WordTokenizer } from '../src/model/tokenizer.js';
import { zooModel } from '../src/zoo/index.js';
import '../src/zoo/builtin.js';
import { commands } from '../src/cli/commands/index.js';

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The `npx circuitry` lines of the README's Commands section, in order. */
function commandLines(): string[] {
  const start = README.indexOf('## Commands');
  const block = README.slice(start).match(/```sh\n([\s\S]*?)```/u);
  if (start < 0 || !block) throw new Error('README: no sh block under ## Commands');
  return block[1].split('\n').filter((l) => l.startsWith('npx circuitry '));
}

/**
 * The graphs `npm start` writes that later lines read, made quickly: the same pipelines with
 * few pairs and candidates (the README lines do not depend on the circuits' quality).
 */
function quickStart(dir: string): void {
  for (const task of ['ioi', 'induction']) {
    const yaml = `model: mini-gpt2\ntask: { name: ${task}, n: 8, seed: 1 }\nverify: { top: 20 }\nevaluate: { faithfulness: false }\noutput:\n  graph: graphs/mini-gpt2-${task}.json\n  report: reports/mini-gpt2-${task}.html\n`;
    writeFileSync(join(dir, `quick-${task}.yaml`), yaml);
    const r = circuitry(['discover', `quick-${task}.yaml`, '--no-report'], dir);
    expect(r.status, r.stderr).toBe(0);
  }
}

describe('the README', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'circuitry-readme-'));
    // what a clone has that the lines read
    cpSync(join(ROOT, 'pipelines'), join(dir, 'pipelines'), { recursive: true });
    cpSync(join(ROOT, 'docs', 'examples'), join(dir, 'docs', 'examples'), { recursive: true });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('has a Commands section of npx circuitry lines, every one quoted so a shell runs it', () => {
    const lines = commandLines();
    expect(lines.length).toBeGreaterThanOrEqual(15);
    for (const l of lines) expect(() => shellWords(l)).not.toThrow();
    for (const l of lines) expect(shellWords(l).join(' '), 'no placeholder arguments').not.toMatch(/\.\.\.|\[--|FILE\b|<[a-z]+>/u);
  });

  it('runs every line of the Commands section in order, each exiting 0', () => {
    quickStart(dir);
    for (const line of commandLines()) {
      const r = circuitry(shellWords(line).slice(2), dir);
      expect(r.status, `${line}\n${r.stdout}\n${r.stderr}`).toBe(0);
    }
    for (const f of ['pairs.jsonl', 'graphs/acdc.json', 'graphs/eap.json', 'sweeps/heads.json', 'search.json', 'trace.json', 'dir.json', 'reports/ioi.html', 'reports/ab.html', 'graphs/planted-induction.json']) {
      expect(existsSync(join(dir, f)), f).toBe(true);
    }
    expect(existsSync(join(dir, 'graphs/acdc.json.checkpoint.json')), 'the resumed run removes its checkpoint').toBe(false);
  }, 1_800_000);

  it("JSONL examples read with mini-gpt2's vocabulary (each line a dataset of its own: they differ in length)", () => {
    const block = README.match(/```json\n([\s\S]*?)```/u);
    expect(block).not.toBeNull();
    const tokenizer = new WordTokenizer(zooModel('mini-gpt2')!.vocab);
    const lines = block![1].split('\n').filter((l) => l.trim() !== '');
    expect(lines.length).toBe(2);
    for (const l of lines) expect(parseJsonlDataset(l, 'README.md', tokenizer).clean.length).toBe(1);
  });
});

/** Every `.example()` a command's builder declares (what `circuitry CMD --help` shows), in command order. */
function helpExamples(): string[] {
  const found: string[] = [];
  const recorder: unknown = new Proxy(function () {}, {
    get: (_t, key) => (key === 'example' ? (cmd: string) => (found.push(cmd), recorder) : () => recorder),
    apply: () => recorder,
  });
  for (const c of commands) c.builder(recorder as never);
  return found;
}

describe('the --help examples', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'circuitry-examples-'));
    cpSync(join(ROOT, 'pipelines'), join(dir, 'pipelines'), { recursive: true });
    cpSync(join(ROOT, 'docs', 'examples'), join(dir, 'docs', 'examples'), { recursive: true });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('every command documents an example, and each one on a built-in model runs as shown', () => {
    const examples = helpExamples();
    const documented = new Set(examples.map((e) => e.split(' ')[1]));
    for (const c of commands.filter((c) => !['start', 'models'].includes(c.command.split(' ')[0]))) expect(documented, c.command).toContain(c.command.split(' ')[0]);
    quickStart(dir);
    expect(circuitry(['tasks', 'ioi', '-n', '8', '--out', 'pairs.jsonl'], dir).status).toBe(0);
    let ran = 0;
    for (const e of examples) {
      const words = shellWords(e).slice(1);
      const model = words[words.indexOf('--model') + 1];
      // examples on GPT-2 need it in the HuggingFace cache, and --redis a server; every other example runs offline
      if ((words.includes('--model') && !zooModel(model)) || words.includes('--redis')) continue;
      const r = circuitry(words, dir);
      expect(r.status, `${e}\n${r.stdout}\n${r.stderr}`).toBe(0);
      ran++;
    }
    expect(ran).toBeGreaterThanOrEqual(14);
  }, 1_800_000);
});
