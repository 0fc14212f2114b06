"""scikit-learn's permutation_importance on the same Dense network and data as our bench.

Reads a JSON spec on stdin: {"layers": [{"kernel": [[...]], "bias": [...], "activation": "relu"}],
"X": [[...]], "y": [...], "scoring": "accuracy" | "r2", "repeats": 5, "runs": 3}. The network runs
in numpy float32 (the baseline users would write), wrapped as an sklearn estimator. Prints JSON:
{"seconds": [...], "means": [...], "sklearn": version, "numpy": version}.
"""
import json
import sys
import time

import numpy as np
import sklearn
from sklearn.base import BaseEstimator
from sklearn.inspection import permutation_importance


def activate(name, h):
    if name == "linear":
        return h
    if name == "relu":
        return np.maximum(h, 0, out=h)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-h))
    if name == "tanh":
        return np.tanh(h)
    if name == "softmax":
        e = np.exp(h - h.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise ValueError(f"activation {name} is not in this bench")


class DenseNet(BaseEstimator):
    """A fitted Dense stack; predict gives classes (classification) or the output (regression)."""

    def __init__(self, layers=None, task="classification"):
        self.layers = layers
        self.task = task

    def fit(self, X, y):
        return self

    def forward(self, X):
        h = np.asarray(X, dtype=np.float32)
        for layer in self.layers:
            h = h @ layer["kernel"] + layer["bias"]
            h = activate(layer["activation"], h)
        return h

    def predict(self, X):
        out = self.forward(X)
        if self.task == "regression":
            return out[:, 0]
        if out.shape[1] == 1:
            return (out[:, 0] > 0.5).astype(np.int64)
        return out.argmax(axis=1)


def main():
    spec = json.load(sys.stdin)
    layers = [
        {
            "kernel": np.asarray(l["kernel"], dtype=np.float32),
            "bias": np.asarray(l["bias"], dtype=np.float32),
            "activation": l["activation"],
        }
        for l in spec["layers"]
    ]
    X = np.asarray(spec["X"], dtype=np.float32)
    y = np.asarray(spec["y"])
    task = "regression" if spec["scoring"] == "r2" else "classification"
    est = DenseNet(layers, task).fit(X, y)
    seconds = []
    result = None
    for run in range(spec.get("runs", 3)):
        t0 = time.perf_counter()
        result = permutation_importance(est, X, y, scoring=spec["scoring"], n_repeats=spec["repeats"], random_state=run)
        seconds.append(time.perf_counter() - t0)
    print(json.dumps({
        "seconds": seconds,
        "means": result.importances_mean.tolist(),
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
    }))


if __name__ == "__main__":
    main()
