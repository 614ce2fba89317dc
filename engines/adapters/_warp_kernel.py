"""Numba bilinear affine warp (the fallback where OpenCV is absent); same conventions as the numpy one."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def warp_bilinear(src, m, out_w, out_h, border):
    hs, ws, c = src.shape
    out = np.empty((out_h, out_w, c), dtype=np.float32)
    for v in range(out_h):
        for u in range(out_w):
            x = m[0, 0] * u + m[0, 1] * v + m[0, 2]
            y = m[1, 0] * u + m[1, 1] * v + m[1, 2]
            xf = np.floor(x)
            yf = np.floor(y)
            x0 = int(xf)
            y0 = int(yf)
            fx = x - xf
            fy = y - yf
            w00 = (1.0 - fy) * (1.0 - fx)
            w01 = (1.0 - fy) * fx
            w10 = fy * (1.0 - fx)
            w11 = fy * fx
            if x0 >= 0 and y0 >= 0 and x0 + 1 < ws and y0 + 1 < hs:
                for ch in range(c):
                    out[v, u, ch] = (w00 * src[y0, x0, ch] + w01 * src[y0, x0 + 1, ch]
                                     + w10 * src[y0 + 1, x0, ch] + w11 * src[y0 + 1, x0 + 1, ch])
            elif x0 + 1 < 0 or y0 + 1 < 0 or x0 >= ws or y0 >= hs:
                for ch in range(c):
                    out[v, u, ch] = border
            else:
                in00 = 0 <= x0 < ws and 0 <= y0 < hs
                in01 = 0 <= x0 + 1 < ws and 0 <= y0 < hs
                in10 = 0 <= x0 < ws and 0 <= y0 + 1 < hs
                in11 = 0 <= x0 + 1 < ws and 0 <= y0 + 1 < hs
                for ch in range(c):
                    a = src[y0, x0, ch] if in00 else border
                    b = src[y0, x0 + 1, ch] if in01 else border
                    d = src[y0 + 1, x0, ch] if in10 else border
                    e = src[y0 + 1, x0 + 1, ch] if in11 else border
                    out[v, u, ch] = w00 * a + w01 * b + w10 * d + w11 * e
    return out
