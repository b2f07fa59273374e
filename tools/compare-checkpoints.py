#!/usr/bin/env python3
"""Compares two dptrain checkpoints bit for bit: every dataset and attribute, the weights, the
optimizer state, the normalization, the history and the training position, except what measures
time (the attribute train_seconds and the history's seconds column).
usage: compare-checkpoints.py A.h5 B.h5    (exit 0 when they are the same; the differences are printed)"""
import sys

import h5py
import numpy as np

TIMED_ATTRIBUTES = {"/dptrain:train_seconds"}


def items(f):
    """{path: array or attribute value} of everything in the file."""
    out = {}

    def attrs(path, obj):
        for k, v in obj.attrs.items():
            if f"{path}:{k}" not in TIMED_ATTRIBUTES:
                out[f"{path}:{k}"] = v

    attrs("/", f)

    def visit(name, obj):
        path = "/" + name
        attrs(path, obj)
        if isinstance(obj, h5py.Dataset):
            v = obj[()]
            if path == "/dptrain/history":
                columns = [c.decode() if hasattr(c, "decode") else c for c in obj.attrs["columns"]]
                v = np.delete(v, columns.index("seconds"), axis=1)
            out[path] = v

    f.visititems(visit)
    return out


def same(x, y):
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != y.shape or x.dtype != y.dtype:
        return False
    if x.dtype.kind in "fc":  # bit for bit, NaN included
        return x.tobytes() == y.tobytes()
    return np.array_equal(x, y)


a, b = items(h5py.File(sys.argv[1], "r")), items(h5py.File(sys.argv[2], "r"))
problems = [f"only in {sys.argv[1]}: {k}" for k in sorted(a.keys() - b.keys())]
problems += [f"only in {sys.argv[2]}: {k}" for k in sorted(b.keys() - a.keys())]
problems += [f"differs: {k}" for k in sorted(a.keys() & b.keys()) if not same(a[k], b[k])]
for p in problems[:20]:
    print(p)
print(f"{len(a)} items compared, {len(problems)} differences")
sys.exit(1 if problems else 0)
