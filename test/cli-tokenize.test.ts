import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, readJson } from './helpers/fixtures.js';

const CLI = join(process.cwd(), 'bin', 'circuitry.js');
const env = { ...process.env, HF_HUB_OFFLINE: '1', HF_HOME: mkdtempSync(join(tmpdir(), 'circuitry-hf-')) };
const run = (...args: string[]) => spawnSync('node', [CLI, ...args], { encoding: 'utf8', env });

interface Case {
  text: string;
  ids: number[];
}

describe('circuitry tokenize', () => {
  it("prints a family model's ids and pieces with its BOS, as HuggingFace tokenizes", () => {
    const model = join(FIXTURES, 'llama-shared', 'model');
    const c = readJson<{ cases: Case[] }>(FIXTURES, 'llama-shared', 'tokenizer_cases.json').cases.find((x) => x.text === 'Mary and John had a book. John gave it to')!;
    const r = run('tokenize', '--model', model, c.text, '--json');
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { ids: number[]; pieces: string[]; prefix: number[] };
    expect(j.ids).toEqual(c.ids);
    expect(j.prefix).toEqual([766]);
    expect(j.pieces.slice(0, 3)).toEqual(['<|begin_of_text|>', 'Mary', ' and']);
    const own = JSON.parse(run('tokenize', '--model', model, c.text, '--json', '--no-special').stdout) as { ids: number[] };
    expect(own.ids).toEqual(c.ids.slice(1));
    const table = run('tokenize', '--model', model, 'Mary and');
    expect(table.status).toBe(0);
    expect(table.stdout).toMatch(/bpe tokenizer, 768 ids, prepends "<\|begin_of_text\|>"\n3 tokens\n {3}0 {2}766 {2}"<\|begin_of_text\|>"\n {3}1 {2}390 {2}"Mary"\n {3}2 {2}259 {2}" and"\n/);
  });

  it("tokenizes with a zoo model's word vocabulary", () => {
    const r = run('tokenize', '--model', 'mini-gpt2', 'When Mary and John', '--json');
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { tokenizer: string; ids: number[]; pieces: string[] };
    expect(j.tokenizer).toBe('word');
    expect(j.pieces).toEqual(['When', 'Mary', 'and', 'John']);
  });

  it('refuses a WordPiece tokenizer in one line, non-zero', () => {
    const dir = mkdtempSync(join(tmpdir(), 'circuitry-tok-'));
    const src = join(FIXTURES, 'neox-shared', 'model');
    copyFileSync(join(src, 'config.json'), join(dir, 'config.json'));
    const tj = JSON.parse(readFileSync(join(src, 'tokenizer.json'), 'utf8')) as { model: Record<string, unknown> };
    tj.model.type = 'WordPiece';
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tj));
    writeFileSync(join(dir, 'model.safetensors'), ''); // never read: tokenize loads no weights
    const r = run('tokenize', '--model', dir, 'hello');
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe(`circuitry: error: ${join(dir, 'tokenizer.json')}: model.type is "WordPiece"; circuitry runs BPE tokenizers (model.type "BPE": byte-level, or SentencePiece-style with byte fallback), not WordPiece or Unigram`);
  });

  it('names an unsupported model_type and the supported families', () => {
    const dir = mkdtempSync(join(tmpdir(), 'circuitry-tok-'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'bert', vocab_size: 10 }));
    writeFileSync(join(dir, 'model.safetensors'), '');
    const r = run('run', '--model', dir, '--tokens', '1');
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(/config\.json: unsupported architecture \(model_type "bert"\); supported families: gpt2 \("gpt2"\), neox \("gpt_neox"\), llama \("llama"\), qwen2 \("qwen2"\), gemma2 \("gemma2"\)$/);
  });
});
