"""Numba kernels: pure array functions, no randomness, no validation.

Every kernel assumes clean input (the public functions in :mod:`augment.warp` and
:mod:`augment.transform` check it) and writes into a caller-allocated output. Work is split
over ``batch * rows`` with ``prange``; every iteration writes only its own output row, so
results do not depend on the number of threads.

Grid convention: ``grid[..., 0]`` is the source row, ``grid[..., 1]`` the source column,
pixel centres at integers.
"""

from __future__ import annotations

import os
import types

import numpy as np
from llvmlite import ir
from numba import get_num_threads, njit, prange
from numba import types as nbtypes
from numba.extending import intrinsic, overload

from augment._splitmix import counter_uniform

# Kernel step records (see ``grid_kernel``): one row of STEP_WIDTH float64 per step.
STEP_AFFINE = 0.0
STEP_ELASTIC = 1.0
STEP_INVERSE_FIELD = 2.0
STEP_WIDTH = 8


def lerp4(s, a, dc, dr, w00, w01, w10, w11, o, q):
    """``o[q + k] = bilinear of s[a + k], s[a + dc + k], s[a + dr + k], s[a + dr + dc + k]``, k < 4.

    Plain Python here (NUMBA_DISABLE_JIT); compiled code uses the overload below, which does the
    four channels as one 4-wide SIMD operation per tap (Numba leaves LLVM's SLP vectorizer off,
    so the unrolled scalar form stays scalar). Same operations, same rounding: results are equal.
    """
    for k in range(4):
        t = a + np.uint64(k)
        o[q + np.uint64(k)] = w00 * s[t] + w01 * s[t + dc] + w10 * s[t + dr] + w11 * s[t + dr + dc]


@intrinsic
def _lerp4_simd(typingctx, s, a, dc, dr, w00, w01, w10, w11, o, q):
    sig = nbtypes.void(s, a, dc, dr, w00, w01, w10, w11, o, q)

    def codegen(context, builder, signature, args):
        s_, a_, dc_, dr_, w00_, w01_, w10_, w11_, o_, q_ = args
        src = context.make_array(signature.args[0])(context, builder, s_).data
        dst = context.make_array(signature.args[8])(context, builder, o_).data
        f4 = ir.VectorType(ir.FloatType(), 4)
        contract = ("contract",)  # as the scalar code's fastmath={"contract"}: a*b + c may fuse

        def ptr(base, idx):
            return builder.bitcast(builder.gep(base, [idx]), f4.as_pointer())

        def splat(x):
            v = ir.Constant(f4, ir.Undefined)
            for k in range(4):
                v = builder.insert_element(v, x, ir.Constant(ir.IntType(32), k))
            return v

        def tap(weight, idx):
            return builder.fmul(splat(weight), builder.load(ptr(src, idx), align=4), flags=contract)

        b = builder.add(a_, dr_)
        acc = tap(w00_, a_)
        acc = builder.fadd(acc, tap(w01_, builder.add(a_, dc_)), flags=contract)
        acc = builder.fadd(acc, tap(w10_, b), flags=contract)
        acc = builder.fadd(acc, tap(w11_, builder.add(b, dc_)), flags=contract)
        builder.store(acc, ptr(dst, q_), align=4)
        return context.get_dummy_value()

    return sig, codegen


@overload(lerp4, jit_options={"nogil": True})
def _lerp4_overload(s, a, dc, dr, w00, w01, w10, w11, o, q):
    if not (s.dtype == o.dtype == nbtypes.float32 and s.layout == o.layout == "C" and a == nbtypes.uint64):
        return None

    def impl(s, a, dc, dr, w00, w01, w10, w11, o, q):
        _lerp4_simd(s, a, dc, dr, w00, w01, w10, w11, o, q)

    return impl


@njit(nogil=True, parallel=True, cache=True, error_model="numpy", fastmath={"contract"})
def warp_kernel(img, prb, lab, grid, h, w, fill, background, label_fill, out_img, out_prb, out_lab, ci, cp, cl):
    """One pass over the grid warping up to three targets that share it; returns the number
    of non-finite grid points (the caller raises if it is not 0, so the grid needs no separate scan).

    All arrays are flattened per sample, channels last: img (B, H*W*Ci) float32 bilinear, taps
    outside read ``fill``; prb (B, H*W*Cp) float32 bilinear, taps outside read
    one-hot(``background``); lab (B, H*W*Cl) integer nearest (floor(c + 0.5)), ``label_fill``
    outside; grid (1|B, H*W*2). ``ci``, ``cp``, ``cl`` are tuples whose *lengths* equal Ci, Cp,
    Cl: compile-time channel counts, so channel loops unroll (a target is absent when its count
    is 0). Interior indices are unsigned: Numba then emits no negative-index wraparound
    selects, which roughly halves the cost of the common case.
    """
    nci = len(ci)
    ncp = len(cp)
    ncl = len(cl)
    nb = out_img.shape[0]
    shared = grid.shape[0] == 1
    fill32 = np.float32(fill)
    zero = np.float32(0.0)
    one = np.float32(1.0)
    half = np.float32(0.5)
    hm1 = np.float32(h - 1)
    wm1 = np.float32(w - 1)
    u1 = np.uint64(1)
    u2 = np.uint64(2)
    uw = np.uint64(w)
    uci = np.uint64(nci)
    ucp = np.uint64(ncp)
    ucl = np.uint64(ncl)
    rowi = np.uint64(w * nci)
    rowp = np.uint64(w * ncp)
    bad = 0
    for row in prange(nb * h):
        b = row // h
        i = row - b * h
        g = grid[0 if shared else b]
        sbi = img[b]
        sbp = prb[b]
        sbl = lab[b]
        obi = out_img[b]
        obp = out_prb[b]
        obl = out_lab[b]
        gbase = np.uint64(2 * i * w)
        obase = np.uint64(i * w)
        for jj in range(w):
            j = np.uint64(jj)
            r = g[gbase + u2 * j]
            c = g[gbase + u2 * j + u1]
            q = obase + j
            if r >= zero and r < hm1 and c >= zero and c < wm1:
                # all four taps inside: the common case, no per-tap checks
                r0 = int(r)
                c0 = int(c)
                fr = r - np.float32(r0)
                fc = c - np.float32(c0)
                p = np.uint64(r0) * uw + np.uint64(c0)
                if fr == zero and fc == zero:
                    # exact at pixel centres: identity and flips reproduce the input bit for bit
                    for k in range(nci):
                        obi[q * uci + np.uint64(k)] = sbi[p * uci + np.uint64(k)]
                    for k in range(ncp):
                        obp[q * ucp + np.uint64(k)] = sbp[p * ucp + np.uint64(k)]
                    for k in range(ncl):
                        obl[q * ucl + np.uint64(k)] = sbl[p * ucl + np.uint64(k)]
                    continue
                w00 = (one - fr) * (one - fc)
                w01 = (one - fr) * fc
                w10 = fr * (one - fc)
                w11 = fr * fc
                # channels in groups of four (one SIMD op per tap), then the remainder
                a = p * uci
                o = q * uci
                for k4 in range(nci // 4):
                    lerp4(sbi, a + np.uint64(4 * k4), uci, rowi, w00, w01, w10, w11, obi, o + np.uint64(4 * k4))
                for k in range(nci - nci % 4, nci):
                    t = a + np.uint64(k)
                    obi[o + np.uint64(k)] = (
                        w00 * sbi[t] + w01 * sbi[t + uci] + w10 * sbi[t + rowi] + w11 * sbi[t + rowi + uci]
                    )
                a = p * ucp
                o = q * ucp
                for k4 in range(ncp // 4):
                    lerp4(sbp, a + np.uint64(4 * k4), ucp, rowp, w00, w01, w10, w11, obp, o + np.uint64(4 * k4))
                for k in range(ncp - ncp % 4, ncp):
                    t = a + np.uint64(k)
                    obp[o + np.uint64(k)] = (
                        w00 * sbp[t] + w01 * sbp[t + ucp] + w10 * sbp[t + rowp] + w11 * sbp[t + rowp + ucp]
                    )
                if ncl > 0:
                    # floor(r + 0.5) == r0 + (fr >= 0.5) exactly, since fr = r - r0 is exact
                    rn = np.uint64(r0 + 1) if fr >= half else np.uint64(r0)
                    cn = np.uint64(c0 + 1) if fc >= half else np.uint64(c0)
                    a = (rn * uw + cn) * ucl
                    for k in range(ncl):
                        obl[q * ucl + np.uint64(k)] = sbl[a + np.uint64(k)]
                continue
            if not (r > -1 and r < h and c > -1 and c < w):
                # every tap outside, for labels too (also NaN/inf, which are counted)
                if not (np.isfinite(r) and np.isfinite(c)):
                    bad += 1
                for k in range(nci):
                    obi[q * uci + np.uint64(k)] = fill32
                for k in range(ncp):
                    obp[q * ucp + np.uint64(k)] = zero
                if ncp > 0:
                    obp[q * ucp + np.uint64(background)] = one
                for k in range(ncl):
                    obl[q * ucl + np.uint64(k)] = label_fill
                continue
            bilinear_border(sbi, sbp, sbl, obi, obp, obl, q, r, c, h, w, nci, ncp, ncl, fill32, background, label_fill)
    return bad


@njit(inline="always", nogil=True, error_model="numpy", fastmath={"contract"})
def bilinear_border(sbi, sbp, sbl, obi, obp, obl, q, r, c, h, w, nci, ncp, ncl, fill32, background, label_fill):
    """``warp_kernel`` for one pixel in the border band (-1 < r < H, -1 < c < W, some tap
    outside): per-tap checks."""
    zero = np.float32(0.0)
    one = np.float32(1.0)
    qi = int(q)
    # labels first (their own rule: float64 so that floor(c + 0.5) is exact)
    if ncl > 0:
        rd = np.float64(r) + 0.5
        cd = np.float64(c) + 0.5
        if rd >= 0 and rd < h and cd >= 0 and cd < w:
            a = (int(rd) * w + int(cd)) * ncl
            for k in range(ncl):
                obl[qi * ncl + k] = sbl[a + k]
        else:
            for k in range(ncl):
                obl[qi * ncl + k] = label_fill
    rf = np.floor(r)
    cf = np.floor(c)
    r0 = int(rf)
    c0 = int(cf)
    fr = r - rf
    fc = c - cf
    p00 = r0 * w + c0
    if fr == 0 and fc == 0:
        for k in range(nci):
            obi[qi * nci + k] = sbi[p00 * nci + k]
        for k in range(ncp):
            obp[qi * ncp + k] = sbp[p00 * ncp + k]
        return
    w00 = (one - fr) * (one - fc)
    w01 = (one - fr) * fc
    w10 = fr * (one - fc)
    w11 = fr * fc
    in00 = r0 >= 0 and c0 >= 0
    in01 = r0 >= 0 and c0 + 1 <= w - 1
    in10 = r0 + 1 <= h - 1 and c0 >= 0
    in11 = r0 + 1 <= h - 1 and c0 + 1 <= w - 1
    p01 = p00 + 1
    p10 = p00 + w
    p11 = p10 + 1
    for k in range(nci):
        v00 = sbi[p00 * nci + k] if in00 else fill32
        v01 = sbi[p01 * nci + k] if in01 else fill32
        v10 = sbi[p10 * nci + k] if in10 else fill32
        v11 = sbi[p11 * nci + k] if in11 else fill32
        obi[qi * nci + k] = w00 * v00 + w01 * v01 + w10 * v10 + w11 * v11
    if ncp > 0:
        w_out = zero
        if not in00:
            w_out += w00
        if not in01:
            w_out += w01
        if not in10:
            w_out += w10
        if not in11:
            w_out += w11
        for k in range(ncp):
            acc = w_out if k == background else zero
            if in00:
                acc += w00 * sbp[p00 * ncp + k]
            if in01:
                acc += w01 * sbp[p01 * ncp + k]
            if in10:
                acc += w10 * sbp[p10 * ncp + k]
            if in11:
                acc += w11 * sbp[p11 * ncp + k]
            obp[qi * ncp + k] = acc


@njit(nogil=True, parallel=True, cache=True, error_model="numpy")
def nearest_kernel(src, grid, fill, out):
    """Nearest pull: source pixel floor(coord + 0.5), ``fill`` outside. Any dtype, (B,H,W,C)."""
    nb, h, w, nc = src.shape
    ho, wo = grid.shape[1], grid.shape[2]
    shared = grid.shape[0] == 1
    for row in prange(nb * ho):
        b = row // ho
        i = row - b * ho
        gr = grid[0 if shared else b, i]
        sb = src[b]
        ob = out[b, i]
        for j in range(wo):
            # float64 so that floor(c + 0.5) is exact for every float32 coordinate
            r = np.float64(gr[j, 0]) + 0.5
            c = np.float64(gr[j, 1]) + 0.5
            if r >= 0 and r < h and c >= 0 and c < w:
                ri = int(r)
                ci = int(c)
                for k in range(nc):
                    ob[j, k] = sb[ri, ci, k]
            else:
                for k in range(nc):
                    ob[j, k] = fill
    return out


@njit(nogil=True, parallel=True, cache=True)
def valid_mask_kernel(grid, out):
    """True where the source lies inside the image: 0 <= row <= H-1 and 0 <= col <= W-1."""
    nb, h, w = grid.shape[0], grid.shape[1], grid.shape[2]
    for row in prange(nb * h):
        b = row // h
        i = row - b * h
        for j in range(w):
            r = grid[b, i, j, 0]
            c = grid[b, i, j, 1]
            out[b, i, j] = r >= 0.0 and r <= h - 1 and c >= 0.0 and c <= w - 1
    return out


@njit(nogil=True, cache=True)
def count_nonfinite(a):
    """Number of NaN or infinite values in a flat float array (stops at the first)."""
    for x in a:
        if not np.isfinite(x):
            return 1
    return 0


@njit(inline="always", nogil=True, error_model="numpy")
def field_at(fields, offset, hc, wc, inv, r, c):
    """Displacement (dr, dc) at pixel (r, c), read bilinearly from the (2, hc, wc) lattice at
    ``fields[offset:]`` with spacing ``1 / inv``, clamped to the lattice edge."""
    ymax = float(hc - 1)
    xmax = float(wc - 1)
    plane = hc * wc
    fy = min(max(r * inv, 0.0), ymax)
    fx = min(max(c * inv, 0.0), xmax)
    y0 = min(int(fy), max(hc - 2, 0))
    x0 = min(int(fx), max(wc - 2, 0))
    ty = fy - y0
    tx = fx - x0
    y1 = min(y0 + 1, hc - 1)
    x1 = min(x0 + 1, wc - 1)
    p00 = offset + y0 * wc + x0
    p01 = offset + y0 * wc + x1
    p10 = offset + y1 * wc + x0
    p11 = offset + y1 * wc + x1
    w00 = (1.0 - ty) * (1.0 - tx)
    w01 = (1.0 - ty) * tx
    w10 = ty * (1.0 - tx)
    w11 = ty * tx
    dr = w00 * fields[p00] + w01 * fields[p01] + w10 * fields[p10] + w11 * fields[p11]
    dc = w00 * fields[p00 + plane] + w01 * fields[p01 + plane] + w10 * fields[p10 + plane] + w11 * fields[p11 + plane]
    return dr, dc


@njit(nogil=True, parallel=True, cache=True, error_model="numpy")
def grid_kernel(steps, n_steps, fields, start, out):
    """Chain pull-back steps for every output pixel: out (B,H,W,2) float32.

    ``steps[b, s]`` is a STEP_WIDTH record applied in order s = 0, 1, ...:
    affine ``[0, a00, a01, a02, a10, a11, a12, _]`` maps (r, c) -> (a00 r + a01 c + a02,
    a10 r + a11 c + a12); elastic ``[1, offset, hc, wc, stride, _, _, _]`` maps
    p -> p + d(p) with d read bilinearly (clamped to the lattice) from ``fields[offset:]``
    laid out (2, hc, wc); inverse field ``[2, offset, hc, wc, stride, iterations, relax, tol]``
    maps p to the q with q + d(q) = p by the relaxed fixed-point iteration
    q <- q - relax * (q + d(q) - p) from q = p, stopping when a step moves less than ``tol``
    pixels or after ``iterations``. The chain starts at the pixel centres, or at
    ``start[b]`` (B, H, W, 2) when ``start`` is not empty. Coordinates are chained in float64
    per row (one step at a time over the whole row, so affine steps vectorize) and rounded once
    to float32.
    """
    nb, h, w = out.shape[0], out.shape[1], out.shape[2]
    given = start.shape[0] > 0
    for row in prange(nb * h):
        b = row // h
        i = row - b * h
        rr = np.empty(w, dtype=np.float64)
        cc = np.empty(w, dtype=np.float64)
        for j in range(w):
            if given:
                rr[j] = start[b, i, j, 0]
                cc[j] = start[b, i, j, 1]
            else:
                rr[j] = i
                cc[j] = j
        for s in range(n_steps[b]):
            kind = steps[b, s, 0]
            if kind == STEP_AFFINE:
                a00, a01, a02 = steps[b, s, 1], steps[b, s, 2], steps[b, s, 3]
                a10, a11, a12 = steps[b, s, 4], steps[b, s, 5], steps[b, s, 6]
                for j in range(w):
                    r = rr[j]
                    c = cc[j]
                    rr[j] = a00 * r + a01 * c + a02
                    cc[j] = a10 * r + a11 * c + a12
                continue
            offset = int(steps[b, s, 1])
            hc = int(steps[b, s, 2])
            wc = int(steps[b, s, 3])
            inv = 1.0 / steps[b, s, 4]
            if kind == STEP_ELASTIC:
                for j in range(w):
                    dr, dc = field_at(fields, offset, hc, wc, inv, rr[j], cc[j])
                    rr[j] += dr
                    cc[j] += dc
                continue
            iterations = int(steps[b, s, 5])
            relax = steps[b, s, 6]
            tol2 = steps[b, s, 7] * steps[b, s, 7]
            for j in range(w):
                pr = rr[j]
                pc = cc[j]
                qr = pr
                qc = pc
                for _ in range(iterations):
                    dr, dc = field_at(fields, offset, hc, wc, inv, qr, qc)
                    er = relax * (qr + dr - pr)
                    ec = relax * (qc + dc - pc)
                    qr -= er
                    qc -= ec
                    if er * er + ec * ec < tol2:
                        break
                rr[j] = qr
                cc[j] = qc
        for j in range(w):
            out[b, i, j, 0] = rr[j]
            out[b, i, j, 1] = cc[j]
    return out


@njit(nogil=True, parallel=True, cache=True, error_model="numpy")
def smooth_noise_kernel(keys, weights, scale, out):
    """Separable 'valid' blur of uniform noise into out (F, hc, wc); field f's noise is
    U(-1, 1) drawn by ``counter_uniform(keys[f], n)`` for n = y * (wc + 2m) + x on the padded
    (hc + 2m, wc + 2m) lattice. It is blurred with the symmetric ``weights`` (2m+1 taps) along
    both axes, then multiplied by ``scale[f]``. Loops run tap-outer, pixel-inner so the inner
    loops are contiguous and vectorize.
    """
    nf, hc, wc = out.shape
    nt = weights.shape[0]
    nh = hc + nt - 1
    nw = wc + nt - 1
    for f in prange(nf):
        u = np.empty((nh, nw), dtype=np.float64)
        for y in range(nh):
            for x in range(nw):
                u[y, x] = 2.0 * counter_uniform(keys[f], y * nw + x) - 1.0
        tmp = np.zeros((nh, wc), dtype=np.float64)
        for y in range(nh):
            for t in range(nt):
                wt = weights[t]
                for x in range(wc):
                    tmp[y, x] += wt * u[y, x + t]
        acc = np.zeros((hc, wc), dtype=np.float64)
        for y in range(hc):
            for t in range(nt):
                wt = weights[t]
                for x in range(wc):
                    acc[y, x] += wt * tmp[y + t, x]
        for y in range(hc):
            for x in range(wc):
                out[f, y, x] = acc[y, x] * scale[f]
    return out


# ---- fork safety ------------------------------------------------------------------------------
# Numba's parallel kernels run on GNU OpenMP here, which aborts a *forked* child that starts a
# parallel region after the parent used one ("fork() called from a process already using GNU
# OpenMP"). Data loaders fork workers (PyTorch DataLoader, multiprocessing pools), so a forked
# child switches to serial copies of the kernels: same code, same results, its own cache entry.
_IN_FORKED_CHILD = False


def _mark_forked_child() -> None:
    global _IN_FORKED_CHILD
    _IN_FORKED_CHILD = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_mark_forked_child)

_SERIAL: dict[object, object] = {}


def _serial_copy(dispatcher):
    """The dispatcher's Python function compiled without ``parallel`` (prange runs as range).

    A distinct ``__qualname__`` (``<name>_serial``) gives the copy its own on-disk cache entry.
    """
    f = dispatcher.py_func
    name = f.__name__ + "_serial"
    g = types.FunctionType(f.__code__, f.__globals__, name, f.__defaults__, f.__closure__)
    g.__qualname__ = name
    options = {k: v for k, v in dispatcher.targetoptions.items() if k not in ("parallel", "nopython", "boundscheck")}
    return njit(cache=True, **options)(g)


def num_threads() -> int:
    """Threads Numba's parallel kernels would use now (``numba.set_num_threads``)."""
    return get_num_threads()


def pick(kernel, serial: bool = False):
    """The kernel to call: ``kernel`` (one of this module's), or its serial copy in a forked
    child or when ``serial`` (for one thread, where the parallel launch only costs time)."""
    if not (serial or _IN_FORKED_CHILD) or not hasattr(kernel, "py_func"):  # no py_func: NUMBA_DISABLE_JIT
        return kernel
    if kernel not in _SERIAL:
        _SERIAL[kernel] = _serial_copy(kernel)
    return _SERIAL[kernel]
