import type * as tf from '@tensorflow/tfjs';

/**
 * Hook points, named as in TransformerLens. Shapes (b = batch, p = position, H = heads,
 * d = d_model, dh = d_head, dm = d_mlp):
 */
export type BlockHook =
  | 'hook_resid_pre' //        [b, p, d]
  | 'hook_q_input' //          [b, p, H, d]   (split q/k/v inputs: opt-in)
  | 'hook_k_input' //          [b, p, H, d]
  | 'hook_v_input' //          [b, p, H, d]
  | 'attn.hook_q' //           [b, p, H, dh]
  | 'attn.hook_k' //           [b, p, H, dh]
  | 'attn.hook_v' //           [b, p, H, dh]
  | 'attn.hook_rot_q' //       [b, p, H, dh]  (after rotary; rotary models only)
  | 'attn.hook_rot_k' //       [b, p, H, dh]
  | 'attn.hook_attn_scores' // [b, H, p_q, p_k]  (scaled and masked, before softmax)
  | 'attn.hook_pattern' //     [b, H, p_q, p_k]
  | 'attn.hook_z' //           [b, p, H, dh]
  | 'attn.hook_result' //      [b, p, H, d]   (per-head outputs: opt-in)
  | 'hook_attn_out' //         [b, p, d]
  | 'hook_resid_mid' //        [b, p, d]
  | 'hook_mlp_in' //           [b, p, d]
  | 'mlp.hook_pre' //          [b, p, dm]    (a gated MLP: the gate's pre-activation)
  | 'mlp.hook_pre_linear' //   [b, p, dm]    (a gated MLP's linear branch)
  | 'mlp.hook_post' //         [b, p, dm]
  | 'hook_mlp_out' //          [b, p, d]
  | 'hook_resid_post'; //      [b, p, d]

export const BLOCK_HOOKS: readonly BlockHook[] = [
  'hook_resid_pre', 'hook_q_input', 'hook_k_input', 'hook_v_input',
  'attn.hook_q', 'attn.hook_k', 'attn.hook_v', 'attn.hook_rot_q', 'attn.hook_rot_k', 'attn.hook_attn_scores', 'attn.hook_pattern',
  'attn.hook_z', 'attn.hook_result', 'hook_attn_out', 'hook_resid_mid', 'hook_mlp_in',
  'mlp.hook_pre', 'mlp.hook_pre_linear', 'mlp.hook_post', 'hook_mlp_out', 'hook_resid_post',
];

export type HookName =
  | 'hook_embed' //               [b, p, d]
  | 'hook_pos_embed' //           [b, p, d]  (learned positions only)
  | `blocks.${number}.${BlockHook}`
  | 'ln_final.hook_normalized'; // [b, p, d]

/** Name of a hook inside block `layer`. */
export function blockHook(layer: number, hook: BlockHook): HookName {
  return `blocks.${layer}.${hook}`;
}

/** Splits a hook name into its layer and block-local part (layer -1 for global hooks). */
export function parseHookName(name: string): { layer: number; hook: BlockHook | 'hook_embed' | 'hook_pos_embed' | 'ln_final.hook_normalized' } | undefined {
  if (name === 'hook_embed' || name === 'hook_pos_embed' || name === 'ln_final.hook_normalized') return { layer: -1, hook: name };
  const m = /^blocks\.(\d+)\.(.+)$/.exec(name);
  if (!m) return undefined;
  const hook = m[2] as BlockHook;
  if (!BLOCK_HOOKS.includes(hook)) return undefined;
  return { layer: Number(m[1]), hook };
}

/**
 * A hook sees the activation and may return a replacement of the same shape (or nothing to
 * leave it). It must not dispose the activation: the forward pass owns it and frees it when the
 * block ends, so a hook that holds a tensor for later must tf.keep it (and dispose it after).
 */
export type HookFn = (activation: tf.Tensor, name: HookName) => tf.Tensor | void;

export type Hooks = ReadonlyMap<HookName, HookFn> | Partial<Record<HookName, HookFn>>;
