"""Input distributions for the ccradix benchmark (and its tests), after the ips4o suite."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]
KEY_DTYPES: tuple[type[np.generic], ...] = (
    np.uint32,
    np.int32,
    np.uint64,
    np.int64,
    np.float32,
    np.float64,
)


def _uniform(n: int, dtype: np.dtype[Any], rng: np.random.Generator) -> Array:
    if dtype.kind == "f":
        scaled: Array = rng.standard_normal(n).astype(dtype) * dtype.type(1e6)
        return scaled
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=n, dtype=dtype, endpoint=True)


def _sorted(n: int, dtype: np.dtype[Any], rng: np.random.Generator) -> Array:
    return np.sort(_uniform(n, dtype, rng))


def _reverse(n: int, dtype: np.dtype[Any], rng: np.random.Generator) -> Array:
    return _sorted(n, dtype, rng)[::-1].copy()


def _all_equal(n: int, dtype: np.dtype[Any], rng: np.random.Generator) -> Array:
    return np.full(n, 42, dtype=dtype)


def _few_unique(n: int, dtype: np.dtype[Any], rng: np.random.Generator) -> Array:
    values = _uniform(16, dtype, rng)
    return values[rng.integers(0, 16, size=n)]


def _zipf(n: int, dtype: np.dtype[Any], rng: np.random.Generator) -> Array:
    return np.minimum(rng.zipf(1.2, size=n), 1 << 30).astype(dtype)


def _exponential(n: int, dtype: np.dtype[Any], rng: np.random.Generator) -> Array:
    values = rng.exponential(scale=1e6, size=n)
    return values.astype(dtype) if dtype.kind == "f" else np.floor(values).astype(dtype)


def _almost_sorted(n: int, dtype: np.dtype[Any], rng: np.random.Generator) -> Array:
    a = _sorted(n, dtype, rng)
    swaps = max(1, int(np.sqrt(n)))
    i, j = rng.integers(0, max(n, 1), size=(2, swaps))
    if n:
        a[i], a[j] = a[j], a[i]
    return a


def _root_dup(n: int, dtype: np.dtype[Any], rng: np.random.Generator) -> Array:
    return (np.arange(n) % max(1, int(np.sqrt(n)))).astype(dtype)


def _staggered(n: int, dtype: np.dtype[Any], rng: np.random.Generator) -> Array:
    i = np.arange(n, dtype=np.int64)
    half = n // 2
    return np.where(i < half, 2 * i + 1, 2 * (i - half)).astype(dtype)


DISTRIBUTIONS: dict[str, Callable[[int, np.dtype[Any], np.random.Generator], Array]] = {
    "uniform": _uniform,
    "sorted": _sorted,
    "reverse": _reverse,
    "all-equal": _all_equal,
    "few-unique": _few_unique,
    "zipf": _zipf,
    "exponential": _exponential,
    "almost-sorted": _almost_sorted,
    "root-dup": _root_dup,
    "staggered": _staggered,
}


def make(name: str, n: int, dtype: npt.DTypeLike, seed: int = 0) -> Array:
    """Return `n` keys of `dtype` drawn from the distribution `name`."""
    return DISTRIBUTIONS[name](n, np.dtype(dtype), np.random.default_rng(seed))
