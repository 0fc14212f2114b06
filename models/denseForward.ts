/**
 * A lean forward pass for Dense/activation stacks: one fused matMul (bias and activation included)
 * per Dense layer, straight on the layer's weights. Same kernels tfjs-layers' Dense uses, without
 * the layers machinery around them (symbolic checks, per-layer tidy scopes, input casts), which on
 * wasm is a measurable share of a predict call (see bench/predictBench.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { applyAct, applyLinear, type Act, type Plan } from './plan.js';

/** Outputs [n, k] of a dense-only plan (see denseOnly) for flat rows x [n, d]. Call inside tf.tidy. */
export function denseForward(plan: Plan, x: tf.Tensor2D): tf.Tensor2D {
  let h: tf.Tensor = x;
  const steps = plan.steps;
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i];
    const next = steps[i + 1];
    if (step.op === 'dense') {
      const act = next?.op === 'act' ? fusedActivation(next.act) : undefined;
      h = tf.fused.matMul({
        a: h as tf.Tensor2D,
        b: step.kernel,
        bias: step.bias,
        activation: act,
        leakyreluAlpha: act === 'leakyrelu' && next?.op === 'act' && next.act.kind === 'leaky' ? next.act.alpha : undefined,
      });
      if (act) i++;
    } else if (step.op === 'act') h = applyAct(step.act, h);
    else if (step.op !== 'reshape') h = applyLinear(step, h); // reshapes keep flat rows as they are
  }
  return h as tf.Tensor2D;
}

/** The fused matMul activation computing `act` exactly as its own kernel does, if there is one. */
function fusedActivation(act: Act): tf.fused.Activation | undefined {
  switch (act.kind) {
    case 'relu':
      return act.cap === undefined ? 'relu' : act.cap === 6 ? 'relu6' : undefined;
    case 'leaky':
      return 'leakyrelu';
    case 'sigmoid':
    case 'elu':
      return act.kind;
    default:
      return undefined;
  }
}
