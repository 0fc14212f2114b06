/**
 * Input gradients of Dense/activation stacks by a hand-written backward pass. tf.grad computes every
 * weight gradient too and spends most of its time in transposed matmuls on wasm; here the backward
 * pass only carries d output / d activation down to the input: one matmul by a transposed kernel per
 * Dense layer and one elementwise product per activation.
 */
import * as tf from '@tensorflow/tfjs';
import { applyAct, applyLinear, type Act, type Plan } from './plan.js';

/** True when `plan` is made of flat Dense layers, reshapes and activations only. */
export function denseOnly(plan: Plan): boolean {
  return plan.steps.every((s) => s.op === 'dense' || s.op === 'reshape' || s.op === 'act');
}

/**
 * d y[:, output] / d x for a batch x of flat rows [n, d]. Call inside tf.tidy. Reshapes are
 * no-ops on flat rows (row-major order is kept), so the whole pass runs on 2-D tensors.
 */
export function denseInputGradients(plan: Plan, x: tf.Tensor2D, output: number): tf.Tensor2D {
  // Forward, keeping what each activation's derivative needs (its input or its output). A Dense
  // followed by an activation tfjs can fuse runs as one kernel, as the Dense layer itself does.
  const saved: tf.Tensor[] = [];
  let h: tf.Tensor = x;
  const steps = plan.steps;
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i];
    const next = steps[i + 1];
    if (step.op === 'dense' && next?.op === 'act' && fusable(next.act)) {
      const act = next.act;
      h = tf.fused.matMul({
        a: h as tf.Tensor2D,
        b: step.kernel,
        bias: step.bias,
        activation: fusable(act),
        leakyreluAlpha: act.kind === 'leaky' ? act.alpha : undefined,
      });
      saved.push(h);
      i++;
    } else if (step.op === 'dense') h = applyLinear(step, h);
    else if (step.op === 'act') {
      const y = applyAct(step.act, h);
      saved.push(usesOutput(step.act) ? y : h);
      h = y;
    }
  }
  // Backward from the one-hot seed; a [1, k] seed broadcasts over the batch until the first
  // row-dependent factor, which keeps purely linear tails at the cost of a vector.
  const width = h.shape[1] as number;
  const seed = new Float32Array(width);
  seed[output] = 1;
  let g: tf.Tensor = tf.tensor2d(seed, [1, width]);
  for (let i = plan.steps.length - 1; i >= 0; i--) {
    const step = plan.steps[i];
    // An explicit transpose then a plain matmul: wasm's matMul with transposeB is ~9x slower
    // (the very cost that makes tf.grad slow there), and transposing a kernel is cheap.
    if (step.op === 'dense') g = tf.matMul(g as tf.Tensor2D, tf.transpose(step.kernel));
    else if (step.op === 'act') g = actBackward(step.act, saved.pop() as tf.Tensor, g);
  }
  return (g.shape[0] === x.shape[0] ? g : tf.tile(g, [x.shape[0], 1])) as tf.Tensor2D;
}

/**
 * Whether the derivative is computed from the activation's output rather than its input. For relu
 * and leaky relu (alpha > 0) both work with the same formula, since y > 0 exactly when z > 0.
 */
function usesOutput(act: Act): boolean {
  if (act.kind === 'relu') return act.cap === undefined;
  if (act.kind === 'leaky') return act.alpha > 0;
  return act.kind === 'sigmoid' || act.kind === 'tanh' || act.kind === 'softmax' || act.kind === 'elu';
}

/** tfjs's fused matMul activation for `act`, when the backward pass can start from its output. */
function fusable(act: Act): tf.fused.Activation | undefined {
  if (!usesOutput(act)) return undefined;
  if (act.kind === 'relu') return 'relu';
  if (act.kind === 'leaky') return 'leakyrelu';
  if (act.kind === 'sigmoid' || act.kind === 'elu') return act.kind;
  return undefined;
}

/** g * d act / d z, with z the activation input or y its output (see usesOutput). Same masks as tfjs. */
function actBackward(act: Act, s: tf.Tensor, g: tf.Tensor): tf.Tensor {
  switch (act.kind) {
    case 'linear':
      return g;
    case 'relu': {
      const mask = act.cap === undefined ? tf.step(s) : tf.mul(tf.step(s), tf.lessEqual(s, act.cap).toFloat());
      return tf.mul(g, mask);
    }
    case 'leaky':
      return tf.mul(g, tf.step(s, act.alpha));
    case 'elu': // y >= 0 ? 1 : y + 1, as tfjs's EluGrad
      return tf.mul(g, tf.where(tf.greaterEqual(s, 0), tf.onesLike(s), tf.add(s, 1)));
    case 'sigmoid':
      return tf.mul(g, tf.mul(s, tf.sub(1, s)));
    case 'tanh':
      return tf.mul(g, tf.sub(1, tf.square(s)));
    case 'softmax': // J^T g = y * (g - <g, y>)
      return tf.mul(s, tf.sub(g, tf.sum(tf.mul(g, s), -1, true)));
  }
}
