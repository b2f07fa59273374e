#!/usr/bin/env python3
"""Trains the MNIST CNN in PyTorch from dptrain's initial weights with the batches in file order (as
dptrain does with data.shuffle = false) and Adam(1e-3, epsilon 1e-7), for one epoch or N steps; prints
the mean training loss and test accuracy, to compare with dptrain on identical starting points.

  dptrain import mnist DIR -o mnist.h5
  dptrain fit mnist.cfg --set fit.epochs=1 --set fit.steps_per_epoch=1 --set fit.optimizer.lr=1e-20 \\
      --set data.shuffle=false --run-dir init            # last.h5 = the initial weights
  dptrain fit mnist.cfg --set fit.epochs=1 --set data.shuffle=false --run-dir ns
  /usr/bin/python3 tools/mnist-same-init-torch.py init/last.h5 mnist.h5 [STEPS]
"""
import sys, h5py, numpy as np, torch, torch.nn as nn
torch.manual_seed(0); torch.set_num_threads(1)
f = h5py.File(sys.argv[1], "r"); d = h5py.File(sys.argv[2], "r")
model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10))
def w(layer, name):
    names = [n.decode() for n in f[layer].attrs["weight_names"]]
    return np.asarray(f[layer][[n for n in names if name in n][0]])
with torch.no_grad():
    for tl, kl in ((0, "conv2d"), (3, "conv2d_1")):
        model[tl].weight.copy_(torch.from_numpy(w(kl, "kernel").transpose(3, 2, 0, 1).copy()))
        model[tl].bias.copy_(torch.from_numpy(w(kl, "bias")))
    k = w("dense", "kernel")                      # rows in (h, w, c) order, as Keras flattens NHWC
    k = k.reshape(5, 5, 64, 128).transpose(2, 0, 1, 3).reshape(1600, 128)   # -> (c, h, w) as torch flattens NCHW
    model[7].weight.copy_(torch.from_numpy(k.T.copy())); model[7].bias.copy_(torch.from_numpy(w("dense", "bias")))
    model[9].weight.copy_(torch.from_numpy(w("dense_1", "kernel").T.copy())); model[9].bias.copy_(torch.from_numpy(w("dense_1", "bias")))
X = torch.from_numpy(np.asarray(d["train/x"], dtype=np.float32) / 255.0).reshape(-1, 28, 28, 1).permute(0, 3, 1, 2).contiguous()
Y = torch.from_numpy(np.asarray(d["train/y"]).astype(np.int64).reshape(-1))
Xt = torch.from_numpy(np.asarray(d["test/x"], dtype=np.float32) / 255.0).reshape(-1, 28, 28, 1).permute(0, 3, 1, 2).contiguous()
Yt = torch.from_numpy(np.asarray(d["test/y"]).astype(np.int64).reshape(-1))
opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
lossf = nn.CrossEntropyLoss()
tot, n = 0.0, 0
steps = int(sys.argv[3]) if len(sys.argv) > 3 else len(X) // 32
for i in range(steps):
    xb, yb = X[i * 32:(i + 1) * 32], Y[i * 32:(i + 1) * 32]
    opt.zero_grad(); l = lossf(model(xb), yb); l.backward(); opt.step()
    tot += l.item() * len(xb); n += len(xb)
with torch.no_grad():
    acc = (model(Xt).argmax(1) == Yt).float().mean().item()
print(f"torch same init, file order: steps {steps} mean train loss {tot / n:.5f} test accuracy {acc:.4f}")
