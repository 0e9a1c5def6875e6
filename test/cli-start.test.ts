import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, circuitry } from './helpers/cli.js';
import { DEFAULT_PIPELINES } from '../src/cli/commands/start.js';
import { readPipelineConfig } from '../src/discovery/config.js';

const TASKS = ['ioi', 'greater-than', 'induction'];

describe('npm start: every task on both trained architectures', () => {
  it('runs each task on mini-gpt2 then mini-llama, with the same settings, writing distinct files', () => {
    const configs = DEFAULT_PIPELINES.map((p) => readPipelineConfig(join(ROOT, p)));
    expect(configs.map((c) => `${c.task?.name} ${c.model}`)).toEqual(TASKS.flatMap((t) => [`${t} mini-gpt2`, `${t} mini-llama`]));
    for (let i = 0; i < configs.length; i += 2) {
      const strip = ({ file: _f, model: _m, output: _o, ...rest }: (typeof configs)[number]) => rest;
      expect(strip(configs[i + 1])).toEqual(strip(configs[i]));
    }
    const outputs = configs.flatMap((c) => [c.output.graph, c.output.report]);
    expect(new Set(outputs).size).toBe(outputs.length);
    expect(configs.map((c) => c.output.graph)).toEqual(TASKS.flatMap((t) => [`graphs/mini-gpt2-${t}.json`, `graphs/mini-llama-${t}.json`]));
  });
});

describe('circuitry start on the two architectures (few pairs)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'circuitry-start-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes both circuits and a comparison page that sets them side by side', () => {
    const files = ['mini-gpt2', 'mini-llama'].map((model) => {
      const yaml = join(dir, `${model}.yaml`);
      writeFileSync(yaml, `model: ${model}\ntask: { name: induction, n: 8, seed: 1 }\nverify: { top: 20 }\nevaluate: { faithfulness: false }\noutput:\n  graph: graphs/${model}-induction.json\n  report: reports/${model}-induction.html\n`);
      return yaml;
    });
    const r = circuitry(['start', '--pipelines', ...files, '--compare-out', 'reports/compare.html'], dir, 300_000);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('wrote reports/compare.html');
    for (const model of ['mini-gpt2', 'mini-llama']) {
      const graph = JSON.parse(readFileSync(join(dir, 'graphs', `${model}-induction.json`), 'utf8'));
      expect(graph.meta.model.name).toBe(model);
      expect(Object.values(graph.edges).filter((e) => (e as { in_graph: boolean }).in_graph).length).toBeGreaterThan(0);
      expect(existsSync(join(dir, 'reports', `${model}-induction.html`))).toBe(true);
    }
    const page = readFileSync(join(dir, 'reports', 'compare.html'), 'utf8');
    // the page's data names the two circuits in the order given: the same task, two architectures
    const titles = [...page.matchAll(/"title":"(induction · mini-[a-z0-9-]+)"/gu)].map((m) => m[1]);
    expect(titles).toEqual(['induction · mini-gpt2', 'induction · mini-llama']);
  }, 300_000);
});

describe('the zoo listing', () => {
  it('circuitry models lists mini-llama with its tasks and shape', () => {
    const r = circuitry(['models']);
    expect(r.status, r.stderr).toBe(0);
    const line = r.stdout.split('\n').find((l) => l.startsWith('mini-llama '));
    expect(line).toMatch(/trained\s+tasks: ioi, greater-than, induction\s+trained 3-layer Llama-style model/u);
    expect(r.stdout).toContain('supported family (gpt2, neox, llama, qwen2, gemma2;');
  });
});
