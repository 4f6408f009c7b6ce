#!/usr/bin/env python3
"""numpy baseline for bench/sparsity.bench.ts: for every tensor of the base, read it and the
same-named tensor of the tuned checkpoint in chunks into reused buffers and count a != b on
uint16 views (the bitwise bf16 compare, without the +-0 rule). Prints changed/total.

usage: sparsity_baseline.py BASE TUNED [CHUNK_ELEMS]
BASE / TUNED: a .safetensors file or a folder with model.safetensors or a sharded index.
"""
import json
import os
import struct
import sys

import numpy as np


def tensors(spec):
    files = []
    if os.path.isdir(spec):
        idx = os.path.join(spec, "model.safetensors.index.json")
        if os.path.exists(idx):
            with open(idx) as f:
                files = sorted(set(json.load(f)["weight_map"].values()))
            files = [os.path.join(spec, x) for x in files]
        else:
            files = [os.path.join(spec, "model.safetensors")]
    else:
        files = [spec]
    out = {}
    for path in files:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        start = 8 + n
        for name, t in header.items():
            if name == "__metadata__":
                continue
            b, e = t["data_offsets"]
            out[name] = (path, start + b, e - b, t["dtype"])
    return out


def main():
    base, tuned = tensors(sys.argv[1]), tensors(sys.argv[2])
    chunk = int(sys.argv[3]) if len(sys.argv) > 3 else 1 << 20
    a = np.empty(chunk, dtype=np.uint16)
    b = np.empty(chunk, dtype=np.uint16)
    handles = {}

    def fh(path):
        if path not in handles:
            handles[path] = open(path, "rb", buffering=0)
        return handles[path]

    changed = total = 0
    for name, (pa, oa, length, dtype) in base.items():
        if name not in tuned or dtype != "BF16":
            continue
        pb, ob, lb, _ = tuned[name]
        if lb != length:
            continue
        fa, fb = fh(pa), fh(pb)
        n = length // 2
        done = 0
        while done < n:
            m = min(chunk, n - done)
            fa.seek(oa + 2 * done)
            fa.readinto(memoryview(a)[:m].cast("B"))
            fb.seek(ob + 2 * done)
            fb.readinto(memoryview(b)[:m].cast("B"))
            changed += int(np.count_nonzero(a[:m] != b[:m]))
            done += m
        total += n
    print(f"{changed}/{total}")


if __name__ == "__main__":
    main()
