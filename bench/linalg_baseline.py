#!/usr/bin/env python3
"""numpy/OpenBLAS baseline for rlvr-lens' numeric core (bench/linalg.bench.ts runs it).

Reusable: `import linalg_baseline as lb` (put bench/ on sys.path) and call
  lb.gemm_gflops(m, k, n, trans_a=False, reps=None)   -> GF/s of op(A)·B in fp32
  lb.randomized_topk_svd(A, k, oversample=16, iters=10, seed=0, X0=None, rr_at=None)
      -> (U, S, V, residual): the SAME algorithm as src/linalg/svd-randomized.ts (block subspace
         iteration on the short side, Rayleigh–Ritz through the fp64 Gram of Y = A·X, two fp32
         GEMMs per iteration, residuals, QR of the next block), run for a FIXED number of
         iterations (pass the count rlvr-lens reported so both do the same work).
  lb.principal_angles(A, B) -> degrees ascending (sines for small, cosines for large).
  lb.synthetic_weight(m, n, seed, decay=0.7) -> fp32 P·diag(j^-decay)·Q (decaying spectrum).
  lb.blas_info() -> {'corename': ..., 'threads': ...}
Thread count: set OPENBLAS_NUM_THREADS (and OMP_NUM_THREADS) BEFORE numpy is imported; the
CLI below does it from --threads. Unset OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE in the calling
environment (the bench does) so OpenBLAS picks its best kernel for the CPU.

CLI: python3 bench/linalg_baseline.py --threads 1 [--gemm M,K,N,T ...] [--svd M,N,K,P,ITERS]
prints one JSON object on stdout. With --serve it instead answers one JSON request per stdin
line ({"gemm": [M,K,N,T], "reps": R} or {"svd": [M,N,K,P,ITERS], "rr_at": [...]}) with one JSON line, so a
benchmark can interleave numpy and its own measurements shape by shape under machine noise.
"""
import argparse
import ctypes
import glob
import json
import os
import sys
import time


def _np():
    import numpy as np  # imported lazily so the CLI can set thread env vars first
    return np


def blas_info():
    np = _np()
    info = {'numpy': np.__version__, 'corename': None,
            'threads': os.environ.get('OPENBLAS_NUM_THREADS')}
    libdir = os.path.join(os.path.dirname(np.__file__), '..', 'numpy.libs')
    for lib in glob.glob(os.path.join(libdir, '*openblas*')):
        try:
            handle = ctypes.CDLL(lib)
        except OSError:
            continue
        for name in ('scipy_openblas_get_corename64_', 'scipy_openblas_get_corename',
                     'openblas_get_corename64_', 'openblas_get_corename'):
            fn = getattr(handle, name, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                info['corename'] = fn().decode()
                break
    return info


def gemm_gflops(m, k, n, trans_a=False, reps=None, seed=0):
    """GF/s of C = op(A)·B, A stored m×k (or k×m when trans_a, used as A.T without a copy)."""
    np = _np()
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((k, m) if trans_a else (m, k), dtype=np.float32)
    B = rng.standard_normal((k, n), dtype=np.float32)
    opA = A.T if trans_a else A
    # the product goes into one preallocated C, as rlvr-lens' side writes into one `out`
    # buffer (numpy measured the same with and without out=; a fresh zero-filled JS array
    # per call costs ~15% of a 0.5 ms product)
    C = np.empty((m, n), dtype=np.float32)
    flops = 2.0 * m * k * n
    if reps is None:
        reps = max(3, min(50, int(2e10 / flops)))
    # warm-up: a quarter of the timed calls (at least one), as the rlvr-lens side does, so
    # caches and clocks settle after the other side ran
    for _ in range(max(1, reps // 4)):
        np.matmul(opA, B, out=C)
    best = float('inf')
    for _ in range(reps):
        t = time.perf_counter()
        np.matmul(opA, B, out=C)
        best = min(best, time.perf_counter() - t)
    return flops / best / 1e9


def _orth(X):
    np = _np()
    return np.linalg.qr(X, mode='reduced')[0]


def randomized_topk_svd(A, k, oversample=16, iters=10, seed=0, X0=None, rr_at=None):
    """Top-k SVD of fp32 A by the rlvr-lens algorithm with a fixed iteration count.

    Mirrors src/linalg/svd-randomized.ts step for step. Per iteration: Y = A·X (fp32 GEMM),
    G = YᵀY (fp64), eigh(G) → Ritz values σ and rotation W, Z = Aᵀ·Y (fp32 GEMM),
    ZW = Z·W, XW = X·W, residuals ‖ZW_i/σ_i − σ_i XW_i‖, then (unless last)
    X ← orth(ZW / σ²). Returns (U (m×k), S (k), V (n×k), residual) in fp64.
    X0: optional warm-start block on the short side (s×≤l), filled with Gaussian columns.
    rr_at: 1-based iterations that run Rayleigh–Ritz + residuals (rlvr-lens' `checkedAt`);
    the others are plain power steps X ← orth(Aᵀ·A·X). Default: every iteration.
    """
    np = _np()
    m, n = A.shape
    tall = m >= n
    s = min(m, n)
    k = min(k, s)
    l = min(s, k + oversample)
    M = A if tall else A.T            # a view, no copy: M is (long × short)
    rng = np.random.default_rng(seed)
    start = rng.standard_normal((s, l))
    if X0 is not None:
        c = min(X0.shape[1], l)
        start[:, :c] = X0[:, :c]
    X = _orth(start)
    rr = set(range(1, iters + 1)) if rr_at is None else set(rr_at) | {iters}
    for it in range(iters):
        Y = M @ X.astype(np.float32)                  # long×l fp32
        if it + 1 not in rr:
            X = _orth((M.T @ Y).astype(np.float64))
            continue
        Y64 = Y.astype(np.float64)
        G = Y64.T @ Y64
        lam, W = np.linalg.eigh(G)
        lam, W = lam[::-1], W[:, ::-1]
        sigma = np.sqrt(np.maximum(lam, 0))
        Z = (M.T @ Y).astype(np.float64)              # short×l = MᵀM X
        ZW = Z @ W
        XW = X @ W
        safe = np.where(sigma > 0, sigma, 1)
        res = np.linalg.norm(ZW[:, :k] / safe[:k] - sigma[:k] * XW[:, :k], axis=0)
        if it == iters - 1:
            break
        X = _orth(ZW / np.where(lam > 0, lam, 1))
    V = XW[:, :k]
    U = (Y64 @ W[:, :k]) / safe[:k]
    S = sigma[:k]
    resid = float(res.max() / (sigma[0] if sigma[0] > 0 else 1))
    return (U, S, V, resid) if tall else (V, S, U, resid)


def principal_angles(A, B):
    """Principal angles (degrees, ascending) between span(A), span(B), orthonormal columns."""
    np = _np()
    if B.shape[1] > A.shape[1]:
        A, B = B, A
    C = A.T @ B
    cos = np.linalg.svd(C, compute_uv=False)
    sin = np.linalg.svd(B - A @ C, compute_uv=False)[::-1]
    sin = np.minimum(sin, 1)
    cos = np.minimum(cos, 1)
    ang = np.where(sin ** 2 <= 0.5, np.arcsin(sin), np.arccos(cos))
    return np.degrees(np.maximum.accumulate(ang))


def synthetic_weight(m, n, seed=0, decay=0.7):
    """fp32 m×n with a decaying spectrum: Gaussian P (m×r) · diag((j+1)^-decay) · Gaussian Q."""
    np = _np()
    rng = np.random.default_rng(seed)
    r = min(m, n)
    P = rng.standard_normal((m, r), dtype=np.float32) * (np.arange(1, r + 1, dtype=np.float32) ** -decay)
    Q = rng.standard_normal((r, n), dtype=np.float32)
    return P @ Q


def time_topk(m, n, k, oversample, iters, seed=0, warm=False, rr_at=None):
    """Seconds for one randomized_topk_svd (fixed iters) of a synthetic weight; with warm=True,
    the timed call is warm-started from the top basis of a nearby matrix (W0's), as for a
    tuned W+ = W0 + small ΔW."""
    A = synthetic_weight(m, n, seed)
    X0 = None
    if warm:
        _, _, V, _ = randomized_topk_svd(A, k, oversample, iters, seed)
        X0 = V if m >= n else _
    t = time.perf_counter()
    randomized_topk_svd(A, k, oversample, iters, seed, X0, rr_at)
    return time.perf_counter() - t


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--gemm', action='append', default=[], help='M,K,N,T (T=1: Aᵀ·B with A stored K×M)')
    p.add_argument('--svd', action='append', default=[], help='M,N,K,P,ITERS')
    p.add_argument('--serve', action='store_true', help='answer JSON requests line by line on stdin')
    args = p.parse_args(argv)
    t = str(args.threads)
    for var in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ[var] = t
    if args.serve:
        sys.stdout.write(json.dumps({'blas': blas_info()}) + '\n')
        sys.stdout.flush()
        for line in sys.stdin:
            if not line.strip():
                continue
            req = json.loads(line)
            if 'gemm' in req:
                m, k, n, tr = req['gemm']
                ans = {'gflops': gemm_gflops(m, k, n, bool(tr), req.get('reps'))}
            elif 'svd' in req:
                m, n, k, pp, iters = req['svd']
                ans = {'seconds': time_topk(m, n, k, pp, iters, warm=bool(req.get('warm')),
                                            rr_at=req.get('rr_at'))}
            else:
                ans = {'error': 'unknown request'}
            sys.stdout.write(json.dumps(ans) + '\n')
            sys.stdout.flush()
        return
    out = {'blas': blas_info(), 'gemm': [], 'svd': []}
    for g in args.gemm:
        m, k, n, tr = (int(x) for x in g.split(','))
        out['gemm'].append({'m': m, 'k': k, 'n': n, 'transA': bool(tr), 'gflops': gemm_gflops(m, k, n, bool(tr))})
    for sv in args.svd:
        m, n, k, pp, iters = (int(x) for x in sv.split(','))
        out['svd'].append({'m': m, 'n': n, 'k': k, 'oversample': pp, 'iters': iters,
                           'seconds': time_topk(m, n, k, pp, iters)})
    json.dump(out, sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
