import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, readJson } from './helpers/fixtures.js';

/**
 * Hub ids of every family resolve through the HuggingFace cache layout
 * ($HF_HOME/hub/models--org--name/{refs/main, snapshots/<commit>/}), offline: the fixture
 * folders stand in for the hub's files, linked as huggingface_hub links them.
 */
const CLI = join(process.cwd(), 'bin', 'circuitry.js');
const IDS = { neox: 'EleutherAI/pythia-70m', qwen2: 'Qwen/Qwen2.5-0.5B', llama: 'meta-llama/Llama-3.2-1B', gemma2: 'google/gemma-2-2b' } as const;
const COMMIT = 'c0ffee0000000000000000000000000000000001';

let env: NodeJS.ProcessEnv;
beforeAll(() => {
  const home = mkdtempSync(join(tmpdir(), 'circuitry-hf-'));
  for (const [family, id] of Object.entries(IDS)) {
    const repo = join(home, 'hub', `models--${id.replace('/', '--')}`);
    const snap = join(repo, 'snapshots', COMMIT);
    mkdirSync(snap, { recursive: true });
    mkdirSync(join(repo, 'refs'));
    writeFileSync(join(repo, 'refs', 'main'), COMMIT);
    const src = join(FIXTURES, `${family}-shared`, 'model');
    for (const f of readdirSync(src)) symlinkSync(join(src, f), join(snap, f));
  }
  env = { ...process.env, HF_HOME: home, HF_HUB_OFFLINE: '1' };
});

const run = (...args: string[]) => spawnSync('node', [CLI, ...args], { encoding: 'utf8', env });

describe('hub ids of every family from the HF cache', () => {
  for (const [family, id] of Object.entries(IDS)) {
    it(`${id} (${family}): runs, predicting HuggingFace's top token, and tokenizes`, () => {
      const dir = join(FIXTURES, `${family}-shared`);
      const prompt = (JSON.parse(readFileSync(join(dir, 'dataset.jsonl'), 'utf8').split('\n')[0]) as { clean: number[] }).clean;
      const hf = readJson<{ first_prompt: { logits: number[][] } }>(dir, 'logits_hf.json').first_prompt.logits;
      const r = run('run', '--model', id, '--tokens', prompt.join(','), '--top', '1', '--json');
      expect(r.status, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout) as { predictions: { top: { token: number }[] }[] };
      j.predictions.forEach((p, i) => expect(p.top[0].token).toBe(hf[i].indexOf(Math.max(...hf[i]))));
      const text = readJson<{ clean: string }[]>(dir, 'dataset_text.json')[0].clean;
      const t = run('tokenize', '--model', id, text, '--json');
      expect(t.status, t.stderr).toBe(0);
      expect((JSON.parse(t.stdout) as { ids: number[] }).ids).toEqual(prompt);
    });
  }
});
