/**
 * Input gradients of Dense/activation stacks by a hand-written backward pass. tf.grad computes every
 * weight gradient too and spends most of its time in transposed matmuls on wasm; here the backward
 * pass only carries d output / d activation down to the input: one matmul by a transposed kernel per
 * Dense layer and one elementwise product per activation.
 */
import * as tf from '@tensorflow/tfjs';
import { applyAct, applyLinear, type Act, type Plan, type Step } from './plan.js';

/** True when `plan` is made of flat Dense layers, reshapes and activations only. */
export function denseOnly(plan: Plan): boolean {
  return plan.steps.every((s) => s.op === 'dense' || s.op === 'reshape' || s.op === 'act');
}

/** The output activation an explainer can apply itself: y = act(z), with z the "logits". */
export type Head = 'linear' | 'softmax' | 'sigmoid' | 'tanh';

/**
 * The model's output as head(z): the last activation when it is softmax, sigmoid or tanh with only
 * reshapes after it (z is then its input, produced by steps[0, logitSteps)); otherwise 'linear',
 * with z the output itself.
 */
export function outputHead(plan: Plan): { head: Head; logitSteps: number } {
  let last = plan.steps.length - 1;
  while (last >= 0 && plan.steps[last].op === 'reshape') last--;
  const step = plan.steps[last];
  if (step?.op === 'act' && (step.act.kind === 'softmax' || step.act.kind === 'sigmoid' || step.act.kind === 'tanh')) {
    return { head: step.act.kind, logitSteps: last };
  }
  return { head: 'linear', logitSteps: plan.steps.length };
}

/**
 * d y[:, output] / d x for a batch x of flat rows [n, d]. Call inside tf.tidy. Reshapes are
 * no-ops on flat rows (row-major order is kept), so the whole pass runs on 2-D tensors.
 */
export function denseInputGradients(plan: Plan, x: tf.Tensor2D, output: number): tf.Tensor2D {
  const { h, saved } = forwardSaving(plan.steps, x);
  // Backward from the one-hot seed; a [1, k] seed broadcasts over the batch until the first
  // row-dependent factor, which keeps purely linear tails at the cost of a vector.
  const width = h.shape[1] as number;
  const seed = new Float32Array(width);
  seed[output] = 1;
  const g = backward(plan.steps, saved, tf.tensor2d(seed, [1, width]));
  return (g.shape[0] === x.shape[0] ? g : tf.tile(g, [x.shape[0], 1])) as tf.Tensor2D;
}

/**
 * The logits z (see outputHead) and their whole Jacobian d z / d x for a batch x [n, d], from one
 * forward pass: the backward pass carries all k seeds at once as [n, k, width], so the matmuls see
 * n * k rows. Returns z [n, k] and the Jacobian [n, k, d]. Call inside tf.tidy.
 */
export function denseLogitJacobian(plan: Plan, x: tf.Tensor2D): { logits: tf.Tensor2D; jacobian: tf.Tensor3D } {
  const steps = plan.steps.slice(0, outputHead(plan).logitSteps);
  const { h, saved } = forwardSaving(steps, x);
  const k = h.shape[1] as number;
  const g = backward(steps, saved, tf.reshape(tf.eye(k), [1, k, k]));
  const n = x.shape[0];
  const jacobian = (g.shape[0] === n ? g : tf.tile(g, [n, 1, 1])) as tf.Tensor3D;
  return { logits: h as tf.Tensor2D, jacobian };
}

/**
 * The same for any plan (convolutions too) by tf.grad over the plan's plain ops: the rows are
 * stacked k times and the objective picks logit c in copy c, so one backward pass returns every
 * logit's gradient. Costs k rows of tf.grad per row. Call inside tf.tidy.
 */
export function gradLogitJacobian(plan: Plan, x: tf.Tensor2D): { logits: tf.Tensor2D; jacobian: tf.Tensor3D } {
  const steps = plan.steps.slice(0, outputHead(plan).logitSteps);
  const [n, d] = x.shape;
  const forward = (t: tf.Tensor): tf.Tensor2D => {
    let h = tf.reshape(t, [t.shape[0], ...plan.inputShape]);
    for (const step of steps) h = step.op === 'act' ? applyAct(step.act, h) : applyLinear(step, h);
    return tf.reshape(h, [t.shape[0], -1]) as tf.Tensor2D;
  };
  const logits = forward(x);
  const k = logits.shape[1];
  // Row c * n + i of `pick` is the one-hot of logit c.
  const pick = tf.reshape(tf.tile(tf.reshape(tf.eye(k), [k, 1, k]), [1, n, 1]), [k * n, k]);
  const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(forward(t), pick)))(tf.tile(x, [k, 1]));
  const jacobian = tf.transpose(tf.reshape(g, [k, n, d]), [1, 0, 2]) as tf.Tensor3D;
  return { logits, jacobian };
}

/**
 * Forward through `steps`, keeping what each activation's derivative needs (its input or its
 * output). A Dense followed by an activation tfjs can fuse runs as one kernel, as the Dense layer
 * itself does.
 */
function forwardSaving(steps: Step[], x: tf.Tensor2D): { h: tf.Tensor; saved: tf.Tensor[] } {
  const saved: tf.Tensor[] = [];
  let h: tf.Tensor = x;
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
  return { h, saved };
}

/**
 * Carries g = d out / d (last activation) down to the input. g is [b, width] for one output or
 * [b, k, width] for k at once, with b = 1 while nothing row-dependent has been met yet.
 */
function backward(steps: Step[], saved: tf.Tensor[], seed: tf.Tensor): tf.Tensor {
  let g = seed;
  const stacked = seed.rank === 3;
  for (let i = steps.length - 1; i >= 0; i--) {
    const step = steps[i];
    // An explicit transpose then a plain matmul: wasm's matMul with transposeB is ~9x slower
    // (the very cost that makes tf.grad slow there), and transposing a kernel is cheap.
    if (step.op === 'dense') {
      const wt = tf.transpose(step.kernel);
      if (!stacked) g = tf.matMul(g as tf.Tensor2D, wt);
      else {
        const [b, k, w] = g.shape;
        g = tf.reshape(tf.matMul(tf.reshape(g, [b * k, w]) as tf.Tensor2D, wt), [b, k, -1]);
      }
    } else if (step.op === 'act') {
      const s = saved.pop() as tf.Tensor;
      g = actBackward(step.act, stacked ? tf.expandDims(s, 1) : s, g);
    }
  }
  return g;
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

/**
 * g * d act / d z, with z the activation input or y its output (see usesOutput), broadcast against
 * g (s may carry a unit axis for stacked seeds). Same masks as tfjs.
 */
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
