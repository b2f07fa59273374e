#!/usr/bin/env python3
"""Max relative difference between the weights of two dptrain/Keras-layout HDF5 files.
usage: compare_weights.py A.h5 B.h5 TOL   (exit 0 when every weight tensor is within TOL)
Both files must name the same layers and weights; a NaN or Inf in either fails the comparison
(NaN compares false with everything, so a max() over differences would silently drop it)."""
import sys
import h5py
import numpy as np


def names(f, key):
    return [n.decode() if hasattr(n, "decode") else n for n in f.attrs[key]]


a, b, tol = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r"), float(sys.argv[3])
if names(a, "layer_names") != names(b, "layer_names"):
    sys.exit(f"different layers: {names(a, 'layer_names')} vs {names(b, 'layer_names')}")
worst, tensors = 0.0, 0
for name in names(a, "layer_names"):
    if names(a[name], "weight_names") != names(b[name], "weight_names"):
        sys.exit(f"{name}: different weights: {names(a[name], 'weight_names')} vs {names(b[name], 'weight_names')}")
    for w in names(a[name], "weight_names"):
        x, y = np.asarray(a[name][w], dtype=np.float64), np.asarray(b[name][w], dtype=np.float64)
        if x.shape != y.shape:
            sys.exit(f"{name}/{w}: shapes {x.shape} and {y.shape}")
        for path, v in ((sys.argv[1], x), (sys.argv[2], y)):
            if not np.all(np.isfinite(v)):
                sys.exit(f"{path}: {name}/{w} holds NaN or Inf")
        rel = np.max(np.abs(x - y)) / max(np.max(np.abs(x)), 1e-30)
        worst = max(worst, rel)
        tensors += 1
if tensors == 0:
    sys.exit("no weights to compare")
print(f"max relative difference {worst:.3g} over {tensors} tensors (tolerance {tol:g})")
sys.exit(0 if worst <= tol else 1)
