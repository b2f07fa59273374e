#!/usr/bin/python3
"""Keras' whole-model files, read without Keras (Python's zipfile and json, h5py, NumPy).

  keras_reference.py predict MODEL(.keras|.h5) IO.h5 OUT.h5
      Runs the model the file describes, as Keras' load_model(MODEL).predict(x) would (channels-last
      layers, Keras 3's formulas), on IO.h5's x; writes OUT.h5 /predictions.
  keras_reference.py structure OURS REFERENCE
      Compares a .keras or whole-model .h5 with one Keras wrote: the same zip members, the same
      HDF5 groups and attributes, every config key ours writes one that Keras writes too (per
      layer class), and the keys Keras' loader needs present. Prints what differs; exit 1 if any.

This is the test's independent reading of the format: it is checked against files real Keras
wrote (the example data's keras/, with the predictions Keras made) before it judges dptrain's.
"""
import io
import json
import math
import sys
import zipfile

import h5py
import numpy as np


def is_zip(path):
    """A zip's first bytes (zipfile.is_zipfile looks for a directory record at the end, which an
    HDF5 file's bytes can hold by chance)"""
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


def load(path):
    """(config dict of the Sequential model, {layer name: [weight arrays in order]})"""
    if is_zip(path):
        with zipfile.ZipFile(path) as z:
            config = json.loads(z.read("config.json"))
            h5 = h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")
        weights = {}
        for name in h5["layers"]:
            vars_ = h5["layers"][name]["vars"]
            weights[name] = [vars_[str(i)][()] for i in range(len(vars_))]
        return config, weights
    f = h5py.File(path, "r")
    config = json.loads(f.attrs["model_config"])
    root = f["model_weights"]
    weights = {}
    for name in root.attrs["layer_names"]:
        name = name.decode() if isinstance(name, bytes) else name
        wn = root[name].attrs["weight_names"]
        weights[name] = [root[name][(w.decode() if isinstance(w, bytes) else w)][()] for w in wn]
    return config, weights


def activation(x, name):
    if name in ("linear", None):
        return x
    if name == "relu":
        return np.maximum(x, 0)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if name == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if name == "tanh":
        return np.tanh(x)
    if name == "gelu":  # Keras' default: the exact one
        return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    if name == "elu":
        return np.where(x > 0, x, np.expm1(x))
    if name == "selu":
        return 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(x))
    if name == "leaky_relu":
        return np.where(x > 0, x, 0.2 * x)
    if name in ("silu", "swish"):
        return x / (1 + np.exp(-x))
    if name == "softplus":
        return np.log1p(np.exp(x))
    if name == "softsign":
        return x / (1 + np.abs(x))
    if name == "hard_sigmoid":
        return np.clip(x / 6 + 0.5, 0, 1)
    if name == "exponential":
        return np.exp(x)
    raise ValueError("activation " + name)


def pad_same(x, k, s):
    """Keras' 'same' padding of (N, H, W, C) for a k window at stride s: (padded, value mask)"""
    pads = []
    for d in (1, 2):
        n = x.shape[d]
        total = max((math.ceil(n / s[d - 1]) - 1) * s[d - 1] + k[d - 1] - n, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=np.nan)


def windows(x, k, s):
    """(N, OH, OW, kh, kw, C) views of (N, H, W, C)"""
    n, h, w, c = x.shape
    oh, ow = (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1
    st = x.strides
    return np.lib.stride_tricks.as_strided(x, (n, oh, ow, k[0], k[1], c), (st[0], st[1] * s[0], st[2] * s[1], st[1], st[2], st[3]))


def layer(x, cls, cfg, w):
    if cls == "InputLayer":
        return x
    if cls == "Rescaling":
        return x * np.float32(cfg["scale"]) + np.float32(cfg["offset"])
    if cls == "Normalization":
        shape = [1] + list(x.shape[1:])
        mean = np.asarray(cfg["mean"], dtype=np.float32).reshape(shape)
        var = np.asarray(cfg["variance"], dtype=np.float32).reshape(shape)
        return (x - mean) / np.maximum(np.sqrt(var), 1e-7)
    if cls == "Dense":
        y = x @ w[0] + (w[1] if cfg.get("use_bias", True) else 0)
        return activation(y, cfg["activation"])
    if cls == "Conv2D":
        k, s = cfg["kernel_size"], cfg["strides"]
        if cfg["padding"] == "same":
            x = np.nan_to_num(pad_same(x, k, s), nan=0.0)
        y = np.einsum("nhwijc,ijcf->nhwf", windows(np.ascontiguousarray(x), k, s), w[0])
        if cfg.get("use_bias", True):
            y = y + w[1]
        return activation(y, cfg["activation"])
    if cls in ("MaxPooling2D", "AveragePooling2D"):
        k, s = cfg["pool_size"], cfg["strides"] or cfg["pool_size"]
        if cfg["padding"] == "same":
            x = pad_same(x, k, s)
        win = windows(np.ascontiguousarray(x), k, s)
        return np.nanmax(win, axis=(3, 4)) if cls[0] == "M" else np.nanmean(win, axis=(3, 4))
    if cls in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        y = x.mean(axis=(1, 2), keepdims=cfg.get("keepdims", False)) if "Average" in cls else \
            x.max(axis=(1, 2), keepdims=cfg.get("keepdims", False))
        return y
    if cls == "Flatten":
        return x.reshape(len(x), -1)
    if cls == "Reshape":
        return x.reshape([len(x)] + list(cfg["target_shape"]))
    if cls == "Dropout":
        return x
    if cls == "Activation":
        return activation(x, cfg["activation"])
    if cls == "LeakyReLU":
        return np.where(x > 0, x, cfg["negative_slope"] * x)
    if cls == "ELU":
        return np.where(x > 0, x, cfg["alpha"] * np.expm1(x))
    if cls == "BatchNormalization":
        gamma, beta, mean, var = w if len(w) == 4 else (None, None, None, None)
        return gamma * (x - mean) / np.sqrt(var + cfg["epsilon"]) + beta
    raise ValueError("layer class " + cls)


def predict(model_path, x):
    config, weights = load(model_path)
    assert config["class_name"] == "Sequential", config["class_name"]
    layers = config["config"]["layers"]
    shape = next((l["config"].get("batch_shape") or l["config"].get("batch_input_shape")
                  for l in layers if l["class_name"] == "InputLayer"), config["config"].get("build_input_shape"))
    x = np.asarray(x, dtype=np.float32).reshape([len(x)] + list(shape[1:]))
    for l in layers:
        x = layer(x, l["class_name"], l["config"], weights.get(l["config"]["name"], []))
        x = x.astype(np.float32)
    return x


# What the structure check allows ours to leave out: keys whose Keras defaults are what dptrain
# means (Keras adds them in newer releases; older ones refuse them), and the optimizer's slot
# variables in the legacy file (not needed by load_model).
OPTIONAL_KEYS = {"quantization_config", "shared_object_id", "renorm", "renorm_clipping", "renorm_momentum",
                 "activity_regularizer"}


def config_keys(config, where, out):
    """{(where, class_name): set of config keys} over the model's layers"""
    for l in config["config"]["layers"]:
        out.setdefault((where, l["class_name"]), set()).update(l["config"].keys())
        out.setdefault((where, l["class_name"] + " (wrapper)"), set()).update(l.keys())


def h5_layout(f, skip_prefix=()):
    """Set of (kind, path with layer names replaced by *, sorted attribute names)"""
    items = set()

    def visit(name, obj):
        if any(name.startswith(p) for p in skip_prefix):
            return
        parts = name.split("/")
        if parts[0] == "layers" and len(parts) > 1:  # layers/<layer>/vars/<i>
            parts = ["layers", "*"] + ["<i>" if i == 3 else p for i, p in enumerate(parts[2:], 2)]
        elif parts[0] == "model_weights" and len(parts) > 1 and parts[1] != "top_level_model_weights":
            kind = type(obj).__name__
            parts = ["model_weights", "*"] + (["..."] if len(parts) > 2 else [])
        items.add((type(obj).__name__ if parts[-1] != "..." else "", "/".join(parts), tuple(sorted(obj.attrs.keys()))))

    f.visititems(visit)
    items.add(("File", "/", tuple(sorted(f.attrs.keys()))))
    return items


def structure(ours, ref):
    problems = []
    if is_zip(ref):
        zo, zr = zipfile.ZipFile(ours), zipfile.ZipFile(ref)
        if sorted(zo.namelist()) != sorted(zr.namelist()):
            problems.append("zip members %s, Keras' %s" % (sorted(zo.namelist()), sorted(zr.namelist())))
        mo, mr = json.loads(zo.read("metadata.json")), json.loads(zr.read("metadata.json"))
        if not set(mr) <= set(mo):
            problems.append("metadata.json lacks %s" % (set(mr) - set(mo)))
        co, cr = json.loads(zo.read("config.json")), json.loads(zr.read("config.json"))
        ho = h5py.File(io.BytesIO(zo.read("model.weights.h5")), "r")
        hr = h5py.File(io.BytesIO(zr.read("model.weights.h5")), "r")
        for key in ("module", "class_name", "config", "build_config", "compile_config"):
            if (key in cr) != (key in co):
                problems.append("config.json: top-level key %s in one file only" % key)
        for key in cr.get("compile_config", {}):
            if key not in co.get("compile_config", {}):
                problems.append("compile_config lacks %s" % key)
        lo, lr_ = h5_layout(ho), h5_layout(hr)
        # an optimizer whose rate is a schedule holds no learning_rate variable (Keras' too)
        for cfg, layout in ((co, lo), (cr, lr_)):
            if isinstance(cfg.get("compile_config", {}).get("optimizer", {}).get("config", {}).get("learning_rate"), dict):
                layout.add(("Dataset", "optimizer/vars/1", ()))
    else:
        ho, hr = h5py.File(ours, "r"), h5py.File(ref, "r")
        co, cr = json.loads(ho.attrs["model_config"]), json.loads(hr.attrs["model_config"])
        to, tr = json.loads(ho.attrs["training_config"]), json.loads(hr.attrs["training_config"])
        for key in tr:
            if key not in to:
                problems.append("training_config lacks %s" % key)
        lo, lr_ = h5_layout(ho, ("optimizer_weights",)), h5_layout(hr, ("optimizer_weights",))
    for key in cr["config"]:
        if key not in co["config"]:
            problems.append("the Sequential config lacks %s" % key)
    if lo != lr_:
        problems.append("HDF5 layout differs: only ours %s; only Keras' %s" % (sorted(lo - lr_), sorted(lr_ - lo)))
    ko, kr = {}, {}
    config_keys(co, "", ko)
    config_keys(cr, "", kr)
    for (w, cls), keys in ko.items():
        if (w, cls) in kr:
            extra = keys - kr[(w, cls)]
            missing = kr[(w, cls)] - keys - OPTIONAL_KEYS
            if extra:
                problems.append("%s: keys Keras does not write: %s" % (cls, sorted(extra)))
            if missing:
                problems.append("%s: keys Keras writes that ours lacks: %s" % (cls, sorted(missing)))
    for p in problems:
        print(p)
    shared = sorted(c for (_, c) in ko if ("", c) in kr and "wrapper" not in c)
    print("compared: %s, HDF5 layout, top-level keys, config keys of %s"
          % ("zip members" if is_zip(ref) else "root attributes", ", ".join(shared)))
    return 1 if problems else 0


def main():
    if sys.argv[1] == "predict":
        x = h5py.File(sys.argv[3], "r")["x"][()]
        with h5py.File(sys.argv[4], "w") as out:
            out["predictions"] = predict(sys.argv[2], x)
        return 0
    if sys.argv[1] == "structure":
        return structure(sys.argv[2], sys.argv[3])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
