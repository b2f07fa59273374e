#!/usr/bin/env python3
"""Rewrites a .cu file's kernel launches, name<<<grid, block>>>(args), as
EMU_LAUNCH(name, grid, block, args) for the CPU emulation (cuda_runtime.h here).

    launches_to_cpp.py IN.cu OUT.cpp
"""
import sys


def split_launch_config(config):
    """'blocks_for(n), THREADS' -> ('blocks_for(n)', 'THREADS'): the last top-level comma."""
    depth, cut = 0, None
    for at, ch in enumerate(config):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            cut = at
    if cut is None:
        raise SystemExit(f"cannot split launch configuration '{config}'")
    return config[:cut].strip(), config[cut + 1:].strip()


def convert(source):
    out, done = [], 0
    while (open_at := source.find("<<<", done)) >= 0:
        name_at = open_at
        while source[name_at - 1].isalnum() or source[name_at - 1] == "_":
            name_at -= 1
        close_at = source.find(">>>", open_at)
        grid, block = split_launch_config(source[open_at + 3:close_at])
        if source[close_at + 3] != "(":
            raise SystemExit(f"launch of {source[name_at:open_at]} without arguments")
        out.append(source[done:name_at])
        out.append(f"EMU_LAUNCH({source[name_at:open_at]}, {grid}, {block}, ")
        done = close_at + 4
    out.append(source[done:])
    return "".join(out)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        text = convert(f.read())
    with open(sys.argv[2], "w") as f:
        f.write(text)
