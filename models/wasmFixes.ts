/**
 * Work-arounds for tfjs-backend-wasm 4.22 bugs that silently give wrong input gradients.
 *
 * MaxPoolGrad on wasm drops the gradient of every pooling window whose values are all <= 0 (except
 * the tensor's very first window): its running maximum apparently starts at 0 instead of -inf.
 * tf.grad through MaxPooling2D is then wrong wherever pooled values are negative (after tanh,
 * batch normalisation, a linear conv ...). The position of a window's maximum does not change when
 * a constant is added to the whole tensor, so the gradient is computed on inputs shifted to be
 * >= 1. The shift costs float32 resolution: values closer than ~1e-7 x |shift| may swap order.
 */
import * as tf from '@tensorflow/tfjs';

let installed = false;

/** Installs the fixes once; they act only while the wasm backend is active. */
export function installWasmFixes(): void {
  if (installed) return;
  installed = true;
  const original = tf.getGradient('MaxPool');
  if (!original?.gradFunc) return;
  const gradFunc = original.gradFunc;
  tf.registerGradient({
    ...original,
    gradFunc: (dy, saved, attrs) => {
      if (tf.getBackend() !== 'wasm') return gradFunc(dy, saved, attrs);
      const [x, y] = saved;
      const shift = tf.relu(tf.sub(1, tf.min(x))); // 0 when everything is already >= 1
      return gradFunc(dy, [tf.add(x, shift), tf.add(y, shift)], attrs);
    },
  });
}
