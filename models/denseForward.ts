/**
 * A lean forward pass for Dense/activation stacks: one fused matMul (bias and activation included)
 * per Dense layer, straight on the layer's weights. Same kernels tfjs-layers' Dense uses, without
 * the layers machinery around them (symbolic checks, per-layer tidy scopes, input casts), which on
 * wasm is a measurable share of a predict call (see bench/predictBench.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { applyAct, applyLinear, type Act, type Plan } from './plan.js';

/**
 * Outputs [n, k] of a dense-only plan (see denseOnly) for flat rows x [n, d]. Call inside tf.tidy.
 * Ops are those tfjs-layers' Dense runs, in the same order, so results are bit-identical: bias
 * and activation fused into the matMul for linear, relu and elu; otherwise matMul, then the bias
 * added, then the activation (a bias summed inside the matMul rounds differently).
 */
export function denseForward(plan: Plan, x: tf.Tensor2D): tf.Tensor2D {
  let h: tf.Tensor = x;
  const steps = plan.steps;
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i];
    const next = steps[i + 1];
    if (step.op === 'dense') {
      const act = next?.op === 'act' ? next.act : undefined;
      const fused = act ? fusedActivation(act) : 'linear';
      if (fused) {
        h = tf.fused.matMul({ a: h as tf.Tensor2D, b: step.kernel, bias: step.bias, activation: fused });
        if (act) i++;
      } else {
        h = tf.matMul(h as tf.Tensor2D, step.kernel);
        if (step.bias) h = tf.add(h, step.bias);
      }
    } else if (step.op === 'act') h = applyAct(step.act, h);
    else if (step.op !== 'reshape') h = applyLinear(step, h); // reshapes keep flat rows as they are
  }
  return h as tf.Tensor2D;
}

/** The activations tfjs-layers' Dense fuses into its matMul (mapActivationToFusedKernel). */
function fusedActivation(act: Act): tf.fused.Activation | undefined {
  if (act.kind === 'linear') return 'linear';
  if (act.kind === 'relu' && act.cap === undefined) return 'relu';
  if (act.kind === 'elu') return 'elu';
  return undefined;
}
