#!/usr/bin/env python3
"""numpy/OpenBLAS baseline for bench/spectrum.bench.ts: the whole spectrum + principal
analysis of ONE tuned model against a base, the straightforward way (no cache, no warm start).

Per 2-D linear weight listed in the plan (JSON: {"tensors": [{"name", "iters", "method", "rr_at"?}], "k",
"oversample", "alpha", "bins"}), with the SAME randomized algorithm as rlvr-lens (bench/linalg_baseline.py:
randomized_topk_svd, a fixed iteration count = what rlvr-lens needed for the base weight, and
Rayleigh–Ritz + residuals at the iterations rlvr-lens checked, `rr_at`; every iteration without it):
  read W0 and W+ (bf16 safetensors → fp32), top-k SVD of W0 and of W+ (both cold; the fp64 Gram
  eigen path where rlvr-lens' topKSVD 'auto' took it, i.e. short side ≤ 320), principal
  angles of U and V, NSS, rank-k reconstruction (U_k Σ_k) V_kᵀ, M_princ = top-α of its |.|,
  M_low = bottom-α of |W0|, update mask (bit compare), 20 equal-count |W0| bins (stable
  radix argsort of the bf16 magnitude key), overlaps + random and magnitude-matched baselines.
Prints one JSON line: seconds, peak RSS (MiB), blas info.

usage: spectrum_baseline.py --threads T --base DIR --tuned DIR --plan plan.json
"""
import argparse
import json
import os
import resource
import struct
import sys
import time


def read_header(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        h = json.loads(f.read(n))
    return h, 8 + n


class Checkpoint:
    def __init__(self, d):
        import numpy as np
        self.np = np
        idx = os.path.join(d, 'model.safetensors.index.json')
        files = [os.path.join(d, 'model.safetensors')]
        if os.path.exists(idx):
            files = sorted({os.path.join(d, f) for f in json.load(open(idx))['weight_map'].values()})
        self.where = {}
        for f in files:
            h, off = read_header(f)
            for name, e in h.items():
                if name != '__metadata__':
                    self.where[name] = (f, off, e)

    def raw(self, name):
        f, off, e = self.where[name]
        a, b = e['data_offsets']
        with open(f, 'rb') as fh:
            fh.seek(off + a)
            buf = fh.read(b - a)
        return self.np.frombuffer(buf, dtype=self.np.uint16).reshape(e['shape'])

    def f32(self, name):
        np = self.np
        return (self.raw(name).astype(np.uint32) << 16).view(np.float32)


def gram_topk(np, A, k):
    """rlvr-lens' 'gram' path: eigh of the fp64 Gram matrix of the short side, long side = A·x/σ."""
    tall = A.shape[0] >= A.shape[1]
    A64 = A.astype(np.float64)
    M = A64 if tall else A64.T
    lam, X = np.linalg.eigh(M.T @ M)
    lam, X = lam[::-1][:k], X[:, ::-1][:, :k]
    S = np.sqrt(np.maximum(lam, 0))
    L = (M @ X) / np.where(S > 0, S, 1)
    return (L, S, X) if tall else (X, S, L)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--base', required=True)
    p.add_argument('--tuned', required=True)
    p.add_argument('--plan', required=True)
    args = p.parse_args()
    for var in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import numpy as np
    import linalg_baseline as lb
    plan = json.load(open(args.plan))
    k, over, alpha, nb = plan['k'], plan['oversample'], plan['alpha'], plan['bins']
    base, tuned = Checkpoint(args.base), Checkpoint(args.tuned)
    t0 = time.perf_counter()
    out = []
    for t in plan['tensors']:
        name, iters = t['name'], t['iters']
        raw0, raw1 = base.raw(name), tuned.raw(name)
        W0, W1 = base.f32(name), tuned.f32(name)
        if t.get('method') == 'gram':
            U0, S0, V0 = gram_topk(np, W0, k)
            U1, S1, V1 = gram_topk(np, W1, k)
        else:
            rr_at = t.get('rr_at')  # rlvr-lens' Rayleigh–Ritz schedule for the base (None: every iteration)
            U0, S0, V0, _ = lb.randomized_topk_svd(W0, k, over, iters, rr_at=rr_at)
            U1, S1, V1, _ = lb.randomized_topk_svd(W1, k, over, iters, rr_at=rr_at)
        au, av = lb.principal_angles(U0, U1), lb.principal_angles(V0, V1)
        nss = float(np.linalg.norm(S1 - S0) / np.linalg.norm(S0))
        n = W0.size
        cnt = int(np.floor(alpha * n))
        rec = np.abs(((U0 * S0).astype(np.float32) @ V0.T.astype(np.float32)).ravel())
        princ = np.zeros(n, bool)
        princ[np.argpartition(-rec, cnt - 1)[:cnt]] = True
        mag = (raw0.ravel() & 0x7fff)
        order = np.argsort(mag, kind='stable')
        low = np.zeros(n, bool)
        low[order[:cnt]] = True
        bins = np.empty(n, np.uint8)
        bins[order] = (np.arange(n) * nb // n).astype(np.uint8)
        upd = (raw0 != raw1).ravel()  # bf16 η rule = bit compare (±0 aside)
        changed = int(upd.sum())
        ch_bin = np.bincount(bins[upd], minlength=nb)
        size = np.bincount(bins, minlength=nb)
        res = {}
        for key, m in (('principal', princ), ('low', low), ('principalNotLow', princ & ~low)):
            dens = np.bincount(bins[m], minlength=nb) / np.maximum(size, 1)
            res[key] = (int((m & upd).sum()), float((ch_bin * dens).sum()))
        out.append((name, float(max(au.max(), av.max())), nss, changed, res))
    secs = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    json.dump({'seconds': secs, 'peakRssMiB': rss, 'tensors': len(out), 'blas': lb.blas_info(),
               'maxAngle': max(o[1] for o in out)}, sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
