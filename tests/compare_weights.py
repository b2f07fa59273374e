#!/usr/bin/env python3
"""Max relative difference between the weights of two dptrain/Keras-layout HDF5 files.
usage: compare_weights.py A.h5 B.h5 TOL   (exit 0 when every weight tensor is within TOL)"""
import sys
import h5py
import numpy as np

a, b, tol = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r"), float(sys.argv[3])
worst = 0.0
for name in [n.decode() for n in a.attrs["layer_names"]]:
    for w in [w.decode() for w in a[name].attrs["weight_names"]]:
        x, y = np.asarray(a[name][w], dtype=np.float64), np.asarray(b[name][w], dtype=np.float64)
        assert x.shape == y.shape, (name, w, x.shape, y.shape)
        rel = np.max(np.abs(x - y)) / max(np.max(np.abs(x)), 1e-30)
        worst = max(worst, rel)
print(f"max relative difference {worst:.3g} (tolerance {tol:g})")
sys.exit(0 if worst <= tol else 1)
