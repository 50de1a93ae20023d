"""Numba kernels: pure array functions, no randomness, no validation.

Every kernel assumes clean input (the public functions in :mod:`augment.warp` and
:mod:`augment.transform` check it) and writes into a caller-allocated output. Work is split
over ``batch * rows`` with ``prange``; every iteration writes only its own output row, so
results do not depend on the number of threads.

Grid convention: ``grid[..., 0]`` is the source row, ``grid[..., 1]`` the source column,
pixel centres at integers.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# Kernel step records (see ``grid_kernel``): one row of STEP_WIDTH float64 per step.
STEP_AFFINE = 0.0
STEP_ELASTIC = 1.0
STEP_WIDTH = 8


@njit(nogil=True, parallel=True, cache=True)
def bilinear_kernel(src, grid, fill, out):
    """Bilinear pull with per-tap fill: src (B,H,W,C), grid (1|B,Ho,Wo,2) -> out (B,Ho,Wo,C)."""
    nb, h, w, nc = src.shape
    ho, wo = grid.shape[1], grid.shape[2]
    shared = grid.shape[0] == 1
    fill32 = np.float32(fill)
    one = np.float32(1.0)
    for row in prange(nb * ho):
        b = row // ho
        i = row - b * ho
        g = 0 if shared else b
        for j in range(wo):
            r = grid[g, i, j, 0]
            c = grid[g, i, j, 1]
            # Outside (-1, H) x (-1, W) every tap is out of bounds; also catches NaN/inf.
            if not (r > -1.0 and r < h and c > -1.0 and c < w):
                for k in range(nc):
                    out[b, i, j, k] = fill32
                continue
            rf = np.floor(r)
            cf = np.floor(c)
            r0 = int(rf)
            c0 = int(cf)
            fr = r - rf
            fc = c - cf
            if fr == 0.0 and fc == 0.0:
                # Exact at pixel centres: identity and flips reproduce the input bit for bit.
                for k in range(nc):
                    out[b, i, j, k] = src[b, r0, c0, k]
                continue
            w00 = (one - fr) * (one - fc)
            w01 = (one - fr) * fc
            w10 = fr * (one - fc)
            w11 = fr * fc
            if r0 >= 0 and r0 < h - 1 and c0 >= 0 and c0 < w - 1:
                for k in range(nc):
                    out[b, i, j, k] = (
                        w00 * src[b, r0, c0, k]
                        + w01 * src[b, r0, c0 + 1, k]
                        + w10 * src[b, r0 + 1, c0, k]
                        + w11 * src[b, r0 + 1, c0 + 1, k]
                    )
                continue
            in_r0 = r0 >= 0
            in_r1 = r0 + 1 <= h - 1
            in_c0 = c0 >= 0
            in_c1 = c0 + 1 <= w - 1
            for k in range(nc):
                v00 = src[b, r0, c0, k] if (in_r0 and in_c0) else fill32
                v01 = src[b, r0, c0 + 1, k] if (in_r0 and in_c1) else fill32
                v10 = src[b, r0 + 1, c0, k] if (in_r1 and in_c0) else fill32
                v11 = src[b, r0 + 1, c0 + 1, k] if (in_r1 and in_c1) else fill32
                out[b, i, j, k] = w00 * v00 + w01 * v01 + w10 * v10 + w11 * v11
    return out


@njit(nogil=True, parallel=True, cache=True)
def probs_kernel(src, grid, background, out):
    """Bilinear pull of a probability map; out-of-bounds taps read one-hot(background)."""
    nb, h, w, nc = src.shape
    ho, wo = grid.shape[1], grid.shape[2]
    shared = grid.shape[0] == 1
    zero = np.float32(0.0)
    one = np.float32(1.0)
    for row in prange(nb * ho):
        b = row // ho
        i = row - b * ho
        g = 0 if shared else b
        for j in range(wo):
            r = grid[g, i, j, 0]
            c = grid[g, i, j, 1]
            if not (r > -1.0 and r < h and c > -1.0 and c < w):
                for k in range(nc):
                    out[b, i, j, k] = zero
                out[b, i, j, background] = one
                continue
            rf = np.floor(r)
            cf = np.floor(c)
            r0 = int(rf)
            c0 = int(cf)
            fr = r - rf
            fc = c - cf
            if fr == 0.0 and fc == 0.0:
                for k in range(nc):
                    out[b, i, j, k] = src[b, r0, c0, k]
                continue
            w00 = (one - fr) * (one - fc)
            w01 = (one - fr) * fc
            w10 = fr * (one - fc)
            w11 = fr * fc
            if r0 >= 0 and r0 < h - 1 and c0 >= 0 and c0 < w - 1:
                for k in range(nc):
                    out[b, i, j, k] = (
                        w00 * src[b, r0, c0, k]
                        + w01 * src[b, r0, c0 + 1, k]
                        + w10 * src[b, r0 + 1, c0, k]
                        + w11 * src[b, r0 + 1, c0 + 1, k]
                    )
                continue
            in_r0 = r0 >= 0
            in_r1 = r0 + 1 <= h - 1
            in_c0 = c0 >= 0
            in_c1 = c0 + 1 <= w - 1
            w_out = zero
            if not (in_r0 and in_c0):
                w_out += w00
            if not (in_r0 and in_c1):
                w_out += w01
            if not (in_r1 and in_c0):
                w_out += w10
            if not (in_r1 and in_c1):
                w_out += w11
            for k in range(nc):
                acc = w_out if k == background else zero
                if in_r0 and in_c0:
                    acc += w00 * src[b, r0, c0, k]
                if in_r0 and in_c1:
                    acc += w01 * src[b, r0, c0 + 1, k]
                if in_r1 and in_c0:
                    acc += w10 * src[b, r0 + 1, c0, k]
                if in_r1 and in_c1:
                    acc += w11 * src[b, r0 + 1, c0 + 1, k]
                out[b, i, j, k] = acc
    return out


@njit(nogil=True, parallel=True, cache=True)
def nearest_kernel(src, grid, fill, out):
    """Nearest pull: source pixel floor(coord + 0.5), ``fill`` outside. Any dtype, (B,H,W,C)."""
    nb, h, w, nc = src.shape
    ho, wo = grid.shape[1], grid.shape[2]
    shared = grid.shape[0] == 1
    for row in prange(nb * ho):
        b = row // ho
        i = row - b * ho
        g = 0 if shared else b
        for j in range(wo):
            # float64 so that floor(c + 0.5) is exact for every float32 coordinate
            r = np.float64(grid[g, i, j, 0])
            c = np.float64(grid[g, i, j, 1])
            if r >= -0.5 and r < h - 0.5 and c >= -0.5 and c < w - 0.5:
                ri = int(np.floor(r + 0.5))
                ci = int(np.floor(c + 0.5))
                for k in range(nc):
                    out[b, i, j, k] = src[b, ri, ci, k]
            else:
                for k in range(nc):
                    out[b, i, j, k] = fill
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


@njit(nogil=True, inline="always")
def _field_read(fields, offset, hc, wc, stride, r, c):
    """Bilinear read of a coarse displacement field (2, hc, wc) at pixel (r, c), clamped."""
    fy = r / stride
    fx = c / stride
    if fy < 0.0:
        fy = 0.0
    if fy > hc - 1:
        fy = float(hc - 1)
    if fx < 0.0:
        fx = 0.0
    if fx > wc - 1:
        fx = float(wc - 1)
    y0 = int(fy)
    x0 = int(fx)
    if y0 > hc - 2:
        y0 = max(hc - 2, 0)
    if x0 > wc - 2:
        x0 = max(wc - 2, 0)
    ty = fy - y0
    tx = fx - x0
    y1 = min(y0 + 1, hc - 1)
    x1 = min(x0 + 1, wc - 1)
    plane = hc * wc
    a = offset + y0 * wc
    bb = offset + y1 * wc
    dr = (1.0 - ty) * ((1.0 - tx) * fields[a + x0] + tx * fields[a + x1]) + ty * (
        (1.0 - tx) * fields[bb + x0] + tx * fields[bb + x1]
    )
    a += plane
    bb += plane
    dc = (1.0 - ty) * ((1.0 - tx) * fields[a + x0] + tx * fields[a + x1]) + ty * (
        (1.0 - tx) * fields[bb + x0] + tx * fields[bb + x1]
    )
    return dr, dc


@njit(nogil=True, parallel=True, cache=True)
def grid_kernel(steps, n_steps, fields, out):
    """Chain pull-back steps for every output pixel: out (B,H,W,2) float32.

    ``steps[b, s]`` is a STEP_WIDTH record applied in order s = 0, 1, ...:
    affine ``[0, a00, a01, a02, a10, a11, a12, _]`` maps (r, c) -> (a00 r + a01 c + a02,
    a10 r + a11 c + a12); elastic ``[1, offset, hc, wc, stride, _, _, _]`` maps
    p -> p + d(p) with d read bilinearly from ``fields[offset:]`` laid out (2, hc, wc).
    Coordinates are chained in float64 and rounded once to float32.
    """
    nb, h, w = out.shape[0], out.shape[1], out.shape[2]
    for row in prange(nb * h):
        b = row // h
        i = row - b * h
        ns = n_steps[b]
        for j in range(w):
            r = float(i)
            c = float(j)
            for s in range(ns):
                if steps[b, s, 0] == STEP_AFFINE:
                    rn = steps[b, s, 1] * r + steps[b, s, 2] * c + steps[b, s, 3]
                    c = steps[b, s, 4] * r + steps[b, s, 5] * c + steps[b, s, 6]
                    r = rn
                else:
                    dr, dc = _field_read(
                        fields, int(steps[b, s, 1]), int(steps[b, s, 2]), int(steps[b, s, 3]), steps[b, s, 4], r, c
                    )
                    r += dr
                    c += dc
            out[b, i, j, 0] = r
            out[b, i, j, 1] = c
    return out


@njit(nogil=True, parallel=True, cache=True)
def smooth_noise_kernel(noise, weights, scale, out):
    """Separable 'valid' blur of uniform noise: noise (F, hc+2m, wc+2m) in [0, 1) -> out (F, hc, wc).

    The noise is mapped to U(-1, 1), blurred with the symmetric ``weights`` (2m+1 taps)
    along both axes, then multiplied by ``scale[f]``.
    """
    nf, hc, wc = out.shape
    nt = weights.shape[0]
    nh = noise.shape[1]
    for f in prange(nf):
        tmp = np.empty((nh, wc), dtype=np.float64)
        for y in range(nh):
            for x in range(wc):
                acc = 0.0
                for t in range(nt):
                    acc += weights[t] * (2.0 * noise[f, y, x + t] - 1.0)
                tmp[y, x] = acc
        for y in range(hc):
            for x in range(wc):
                acc = 0.0
                for t in range(nt):
                    acc += weights[t] * tmp[y + t, x]
                out[f, y, x] = acc * scale[f]
    return out
