#!/usr/bin/env python3
"""Feeds dptrain damaged inputs and checks the product's promise for bad input: one clear line,
exit status 2 (or success where the damage does not matter), never a crash, a hang, a sanitizer
report or an "internal failure"; and whatever a fit does, the checkpoints already in its run
directory stay readable.

    fuzz_inputs.py DPTRAIN DATA_DIR [--iterations N] [--seed S] [--keep DIR]

Inputs (each iteration damages one, seeded, so a failure is reproducible with the same seed):
job files (text edits that keep the file mostly valid, so the damage reaches the checks after the
parser), checkpoints, HDF5 data sets, MNIST IDX files, CSV files, and command lines. Standard
library only; run it against a sanitizer build (DPTRAIN_SANITIZE=ON) to see memory errors too.
"""
import argparse
import gzip
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

TIMEOUT = 60  # seconds for one run: a short job, so more is a hang
ALLOWED = {0, 2, 4}  # success, bad input, the loss became NaN (an lr of 1e30 is legal)
NUMBERS = ["0", "-1", "1", "2", "3", "7", "0.5", "1.0", "-0.5", "1e30", "-1e30", "1e-30", "1e308", "2147483647",
           "2147483648", "4294967296", "9223372036854775807", "99999999999", "0.0", "-0", "1e-7", "28", "29",
           "100000"]
STRINGS = ['""', '"relu"', '"softmax"', '"linear"', '"same"', '"valid"', '"dense"', '"conv2d"', '"maxpool2d"',
           '"flatten"', '"dropout"', '"adam"', '"sgd"', '"rmsprop"', '"mse"', '"loss"', '"val_accuracy"',
           '"categorical_crossentropy"', '"sparse_categorical_crossentropy"', '"binary_crossentropy"',
           '"accuracy"', '"mae"', '"max"', '"min"', '"standard"', '"minmax"', '"none"', '"/dev/null"',
           '"missing.h5"', '"' + "x" * 5000 + '"', '"nccl"', '"mpi"', '"fp32"', '"bf16"', '"\\n"']
MODEL_LINES = ['{ type = "flatten"; },', '{ type = "dropout"; rate = 0.5; },', '{ type = "dropout"; rate = 1.0; },',
               '{ type = "dense"; units = 1; activation = "sigmoid"; },', '{ type = "dense"; units = 0; },',
               '{ type = "maxpool2d"; pool_size = 2; },', '{ type = "maxpool2d"; pool_size = 64; },',
               '{ type = "conv2d"; filters = 4; kernel_size = 3; padding = "same"; strides = 2; },',
               '{ type = "conv2d"; filters = 4; kernel_size = 30; },', '{ type = "batchnorm"; },', '{ },', '{}']


def mutate_text(text, rng):
    """One edit of a job file or CSV: most keep the syntax, so the semantic checks are reached."""
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    op = rng.randrange(9)
    if op == 0:  # a number becomes another
        nums = list(re.finditer(r"(?<![\w.])-?\d+(\.\d+)?(e-?\d+)?(?![\w.])", text))
        if nums:
            m = rng.choice(nums)
            return text[:m.start()] + rng.choice(NUMBERS) + text[m.end():]
    if op == 1:  # a string becomes another
        strs = list(re.finditer(r'"[^"\n]*"', text))
        if strs:
            m = rng.choice(strs)
            return text[:m.start()] + rng.choice(STRINGS) + text[m.end():]
    if op == 2:  # a line goes
        del lines[i]
        return "\n".join(lines)
    if op == 3:  # a line twice
        lines.insert(i, lines[i])
        return "\n".join(lines)
    if op == 4:  # a layer more
        layer_at = [k for k, line in enumerate(lines) if "type =" in line]
        if layer_at:
            lines.insert(rng.choice(layer_at), "  " + rng.choice(MODEL_LINES))
            return "\n".join(lines)
    if op == 5:  # cut short
        return text[:rng.randrange(len(text) + 1)]
    if op == 6:  # a byte changes
        k = rng.randrange(max(len(text), 1))
        return text[:k] + chr(rng.choice([0x20, 0x22, 0x3b, 0x7b, 0x7d, 0x2c, 0x3d, 0x23, 0x0a, rng.randrange(1, 0x7f)])) + text[k + 1:]
    if op == 7:  # two lines swap
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
        return "\n".join(lines)
    # a CSV field or key goes odd
    fields = list(re.finditer(r"[^,\n;=]+", text))
    if fields:
        m = rng.choice(fields)
        return text[:m.start()] + rng.choice(["", "nan", "inf", "-inf", "1e999", "abc", " ", "1,2", "0x10", "--"]) + text[m.end():]
    return text


def mutate_bytes(data, rng, header_bytes=4096):
    """One edit of a binary file; half of them in the first header_bytes, where the structure is."""
    data = bytearray(data)
    if not data:
        return bytes(data)
    near = min(len(data), header_bytes) if rng.random() < 0.5 else len(data)
    op = rng.randrange(5)
    if op == 0:
        for _ in range(rng.randint(1, 8)):
            k = rng.randrange(near)
            data[k] ^= 1 << rng.randrange(8)
    elif op == 1:
        k = rng.randrange(near)
        n = rng.randint(1, 64)
        data[k:k + n] = bytes(rng.randrange(256) for _ in range(len(data[k:k + n])))
    elif op == 2:
        k = rng.randrange(near)
        data[k:k + 512] = bytes(len(data[k:k + 512]))
    elif op == 3:
        del data[rng.randrange(len(data)):]
    else:
        k = rng.randrange(near)
        data[k] = rng.choice([0x00, 0xff, 0x7f, 0x80])
    return bytes(data)


class Fuzzer:
    def __init__(self, dptrain, data, work, seed):
        self.dptrain, self.data, self.work = dptrain, data, work
        self.seed = seed
        self.rng = random.Random(seed)
        self.findings = []
        self.runs = 0
        self.outcomes = {}
        self.skip = False

    def run(self, label, args, input_desc, allowed=ALLOWED):
        if self.skip:
            return None
        self.runs += 1
        env = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "detect_leaks=0"))
        try:
            p = subprocess.run([self.dptrain] + args, cwd=self.work, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=TIMEOUT, env=env)
        except subprocess.TimeoutExpired:
            self.finding(label, input_desc, f"no answer within {TIMEOUT} s", "")
            return None
        err = p.stderr.decode("utf-8", "replace")
        self.outcomes[(label, p.returncode)] = self.outcomes.get((label, p.returncode), 0) + 1
        problem = None
        if p.returncode < 0 or p.returncode >= 128:
            problem = f"killed by signal {abs(p.returncode) if p.returncode < 0 else p.returncode - 128}"
        elif "Sanitizer" in err or "runtime error:" in err:
            problem = "sanitizer report"
        elif "HDF5-DIAG" in err:
            problem = "HDF5's own error stack printed"
        elif p.returncode not in allowed:
            problem = f"exit status {p.returncode}"
        elif p.returncode == 2 and len([line for line in err.splitlines() if line.strip()]) != 1:
            problem = f"{len(err.splitlines())} lines on stderr, expected one"
        if not problem and args[0] == "fit" and os.path.isdir(os.path.join(self.work, "run")):
            for name in sorted(os.listdir(os.path.join(self.work, "run"))):
                if name.endswith(".h5"):
                    q = subprocess.run([self.dptrain, "inspect", os.path.join("run", name)], cwd=self.work,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=TIMEOUT, env=env)
                    if q.returncode != 0:
                        problem = f"exit {p.returncode} left run/{name} unreadable: {q.stderr.decode()[:300]}"
        if problem:
            self.finding(label, input_desc, problem, err)
        return p

    def finding(self, label, input_desc, problem, err):
        self.findings.append((label, input_desc, problem, err))
        keep = os.path.join(self.work, "findings", str(len(self.findings)))
        os.makedirs(keep)
        for name in os.listdir(self.work):  # the damaged inputs, to run again by hand
            if name.startswith(("mut", "mx.", "my.")):
                copy = shutil.copytree if os.path.isdir(os.path.join(self.work, name)) else shutil.copy
                copy(os.path.join(self.work, name), os.path.join(keep, name))
        with open(os.path.join(keep, "stderr.txt"), "w") as f:
            f.write(f"{input_desc}\n{problem}\n{err}")
        print(f"FINDING {label}: {problem} (inputs kept in {keep})\n  input: {input_desc}\n"
              f"  stderr: {err.strip()[:1500]}", flush=True)

    def write(self, name, content):
        path = os.path.join(self.work, name)
        with open(path, "wb") as f:
            f.write(content if isinstance(content, bytes) else content.encode("utf-8", "surrogateescape"))
        return path


def write_small_idx(src_dir, dst_dir, train_rows, test_rows):
    """The first rows of the MNIST IDX files, gzipped like the originals."""
    os.makedirs(dst_dir, exist_ok=True)
    for prefix, rows in (("train", train_rows), ("t10k", test_rows)):
        for kind, header, row_bytes in (("images-idx3-ubyte", 16, 784), ("labels-idx1-ubyte", 8, 1)):
            with gzip.open(os.path.join(src_dir, f"{prefix}-{kind}.gz"), "rb") as f:
                head = bytearray(f.read(header))
                body = f.read(rows * row_bytes)
            head[4:8] = rows.to_bytes(4, "big")
            with gzip.open(os.path.join(dst_dir, f"{prefix}-{kind}.gz"), "wb") as f:
                f.write(bytes(head) + body)


def setup(fz, src):
    """Small data sets, job files for them and a checkpoint of each model, made by dptrain itself."""
    data = fz.data
    subprocess.run([fz.dptrain, "import", "csv", "--x", f"{data}/cancer/cancer_data.csv", "--y",
                    f"{data}/cancer/cancer_target.csv", "-o", "cancer.h5", "--test-split", "0.3", "--seed", "7"],
                   cwd=fz.work, check=True, stdout=subprocess.DEVNULL)
    write_small_idx(f"{data}/mnist", os.path.join(fz.work, "idx"), 256, 64)
    subprocess.run([fz.dptrain, "import", "mnist", "idx", "-o", "mnist.h5"], cwd=fz.work, check=True,
                   stdout=subprocess.DEVNULL)
    cancer = open(f"{src}/jobs/cancer_mlp.cfg").read().replace("epochs = 300", "epochs = 2")
    mnist = open(f"{src}/jobs/mnist_cnn.cfg").read().replace("epochs = 5", "epochs = 1")
    mnist = mnist.replace("filters = 32", "filters = 4").replace("filters = 64", "filters = 8")
    mnist = mnist.replace("units = 128", "units = 16")
    fz.jobs = {"cancer": cancer, "mnist": mnist}
    for name, text in fz.jobs.items():
        fz.write(f"{name}.cfg", text)
        subprocess.run([fz.dptrain, "fit", f"{name}.cfg", "--run-dir", f"ref-{name}", "--progress", "lines"],
                       cwd=fz.work, check=True, stdout=subprocess.DEVNULL)
    fz.csv = {"x": open(f"{data}/cancer/cancer_data.csv").read(), "y": open(f"{data}/cancer/cancer_target.csv").read()}


def fresh_run_dir(fz, name):
    """run/ starts as a copy of the job's reference run: whatever a failed fit does, the
    checkpoints there must stay readable (written atomically, never torn)."""
    run = os.path.join(fz.work, "run")
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(os.path.join(fz.work, f"ref-{name}"), run)


def fuzz_job(fz, i):
    name = fz.rng.choice(list(fz.jobs))
    text = mutate_text(fz.jobs[name], fz.rng)
    path = fz.write("mut.cfg", text)
    fresh_run_dir(fz, name)
    weights = f"ref-{name}/best.h5"
    command = fz.rng.choice([["fit", path, "--run-dir", "run", "--progress", "lines", "--set", "fit.steps_per_epoch=3"]] * 5 +
                            [["evaluate", path, "--weights", weights], ["sbatch", path, "--nodes", "2"],
                             ["predict", path, "--weights", weights, "--data", f"{name}.h5", "-o", "pred.csv"]])
    fz.run("job file", command, f"iteration {i}: dptrain {command[0]} with {name}.cfg edited to:\n{text[:3000]}")


def fuzz_checkpoint(fz, i):
    name = fz.rng.choice(list(fz.jobs))
    src = os.path.join(fz.work, f"ref-{name}", fz.rng.choice(["last.h5", "best.h5"]))
    raw = open(src, "rb").read()
    fz.write("mut.h5", mutate_bytes(raw, fz.rng))
    desc = f"iteration {i}: {src} damaged (seed {fz.seed})"
    fresh_run_dir(fz, name)
    which = fz.rng.randrange(3)
    if which == 0:
        fz.run("checkpoint", ["fit", f"{name}.cfg", "--resume", "mut.h5", "--run-dir", "run", "--progress", "lines",
                              "--set", "fit.epochs=3"], desc)
    elif which == 1:
        fz.run("checkpoint", ["evaluate", f"{name}.cfg", "--weights", "mut.h5"], desc)
    else:
        fz.run("checkpoint", ["inspect", "mut.h5"], desc)


def fuzz_dataset(fz, i):
    name = fz.rng.choice(list(fz.jobs))
    raw = open(os.path.join(fz.work, f"{name}.h5"), "rb").read()
    fz.write("mutdata.h5", mutate_bytes(raw, fz.rng))
    fresh_run_dir(fz, name)
    desc = f"iteration {i}: {name}.h5 damaged (seed {fz.seed})"
    if fz.rng.randrange(2):
        fz.run("data set", ["fit", f"{name}.cfg", "--set", "data.file=mutdata.h5", "--run-dir", "run", "--progress",
                            "lines", "--set", "fit.steps_per_epoch=3"], desc)
    else:
        fz.run("data set", ["inspect", "mutdata.h5"], desc)


def fuzz_idx(fz, i):
    src = os.path.join(fz.work, "idx")
    dst = os.path.join(fz.work, "mutidx")
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    victim = fz.rng.choice(sorted(os.listdir(dst)))
    path = os.path.join(dst, victim)
    if fz.rng.randrange(2):  # damage inside the gzip stream
        with gzip.open(path, "rb") as f:
            raw = f.read()
        with gzip.open(path, "wb") as f:
            f.write(mutate_bytes(raw, fz.rng, header_bytes=32))
        how = "decompressed and damaged"
    else:
        raw = open(path, "rb").read()
        open(path, "wb").write(mutate_bytes(raw, fz.rng, header_bytes=64))
        how = "damaged as a gzip file"
    fz.run("idx", ["import", "mnist", "mutidx", "-o", "mutidx.h5"], f"iteration {i}: {victim} {how} (seed {fz.seed})")


def fuzz_csv(fz, i):
    which = fz.rng.choice(["x", "y"])
    files = dict(fz.csv)
    files[which] = mutate_text(files[which], fz.rng)
    fz.write("mx.csv", files["x"])
    fz.write("my.csv", files["y"])
    fz.run("csv", ["import", "csv", "--x", "mx.csv", "--y", "my.csv", "-o", "mutcsv.h5"],
           f"iteration {i}: the {which} CSV edited (seed {fz.seed})")


CLI_TOKENS = ["fit", "evaluate", "predict", "import", "csv", "mnist", "synth", "inspect", "shard", "report",
              "scaling", "sbatch", "bench", "cancer.cfg", "mnist.cfg", "cancer.h5", "nothere.cfg", "--set",
              "fit.epochs=0", "fit.batch_size=-1", "=", "--run-dir", "", "--resume", "auto", "--device", "gpu",
              "--weights", "ref-cancer/best.h5", "-o", "--x", "--y", "--nodes", "0", "--gpus-per-node", "-3",
              "--rows", "-5", "--help", "--version", "--dry-run", "-", "--progress", "x", "--shards", "0"]


def fuzz_cli(fz, i):
    args = [fz.rng.choice(CLI_TOKENS) for _ in range(fz.rng.randint(1, 7))]
    shutil.rmtree(os.path.join(fz.work, "run"), ignore_errors=True)
    if "fit" in args or "bench" in args:
        args += ["--set", "fit.steps_per_epoch=2", "--set", "fit.epochs=1", "--run-dir", "run"]
    fz.run("command line", args, f"iteration {i}: dptrain {' '.join(repr(a) for a in args)}")


TARGETS = [fuzz_job, fuzz_job, fuzz_checkpoint, fuzz_dataset, fuzz_idx, fuzz_csv, fuzz_cli]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dptrain")
    ap.add_argument("data")
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", help="work in this directory and keep it")
    ap.add_argument("--only", type=int, help="run only iteration ONLY of this seed (to see a finding again)")
    a = ap.parse_args()
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/e2e/ -> the source tree
    work = a.keep or tempfile.mkdtemp(prefix="dptrain-fuzz.")
    os.makedirs(work, exist_ok=True)
    fz = Fuzzer(os.path.abspath(a.dptrain), os.path.abspath(a.data), work, a.seed)
    setup(fz, src)
    total = a.iterations if a.only is None else a.only + 1
    for i in range(total):
        fz.skip = a.only is not None and i != a.only  # the draws still happen, so iteration ONLY is the same
        fz.rng.choice(TARGETS)(fz, i)
        if (i + 1) % 50 == 0 and a.only is None:
            print(f"{i + 1}/{total} inputs, {len(fz.findings)} findings", flush=True)
    summary = {}
    for (label, rc), n in sorted(fz.outcomes.items()):
        summary.setdefault(label, []).append(f"exit {rc}: {n}")
    for label, parts in summary.items():
        print(f"  {label:13s} {', '.join(parts)}")
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{fz.runs} runs, {len(fz.findings)} findings (seed {a.seed})")
    return 1 if fz.findings else 0


if __name__ == "__main__":
    sys.exit(main())
