"""CC-Radix sort for NumPy arrays.

Keys: uint32, int32, uint64, int64, float32, float64 in native byte order; any other dtype raises
TypeError (nothing is cast, so the result keeps the dtype of the input). Arrays must be
one-dimensional (ValueError otherwise). A non-contiguous input is copied once before sorting,
except with ``inplace=True``, which needs a writeable C-contiguous array (ValueError otherwise).

The output equals ``numpy.sort`` element for element: signed zeros come out as -0.0 before +0.0,
and every NaN sorts last, written as the canonical quiet NaN (``numpy.nan``'s bits).
The GIL is released while the C++ code runs.

``sort`` hands arrays below a size per dtype, thread count and numpy's sort kernels
(``_ccradix.RADIX_FROM``, ``_ccradix.NUMPY_SORT``; see docs/native.md) to numpy's own sort, which
is the faster there; the result is the same, bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from . import _ccradix

__all__ = ["argsort", "release_scratch", "sort", "sort_pairs"]


def sort(
    a: npt.ArrayLike,
    *,
    inplace: bool = False,
    descending: bool = False,
    threads: int = 1,
) -> npt.NDArray[Any]:
    """Return `a` sorted (or sort it in place and return it, with ``inplace=True``).

    ``descending=True`` gives exactly the reverse of the ascending order (NaNs first).
    ``threads > 1`` splits the first pass and the buckets between that many threads.
    """
    if not isinstance(a, np.ndarray):  # inline: a call costs as much as numpy's sort of 100 keys
        a = np.asarray(a)
    return _ccradix.sort(a, inplace, descending, threads)


def argsort(a: npt.ArrayLike, *, stable: bool = True, threads: int = 1) -> npt.NDArray[np.int64]:
    """Return the indices that sort `a`, like ``numpy.argsort(a, kind="stable")``.

    The radix sort is always stable; ``stable=False`` is accepted for numpy compatibility.
    """
    del stable  # every order this returns is the stable one
    return _ccradix.argsort(_as_array(a), threads)


def sort_pairs(
    keys: npt.ArrayLike,
    values: npt.ArrayLike,
    *,
    descending: bool = False,
    threads: int = 1,
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Sort `keys` stably, carrying `values` along; return new (keys, values) arrays.

    `values` may have any plain 4- or 8-byte dtype (its bits are moved, never interpreted).
    """
    return _ccradix.sort_pairs(_as_array(keys), _as_array(values), descending, threads)


def release_scratch() -> int:
    """Free the scratch buffer kept between calls; return its size in bytes."""
    return _ccradix.release_scratch()


def _as_array(a: npt.ArrayLike) -> npt.NDArray[Any]:
    # Lists and scalars become arrays; arrays pass through untouched (no copy, no cast).
    return a if isinstance(a, np.ndarray) else np.asarray(a)
