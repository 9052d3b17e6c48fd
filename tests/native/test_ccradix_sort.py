"""ccradix orders exactly as numpy does, for every key dtype and distribution.

`ccradix.sort` hands small arrays to numpy.sort (the cut-over); each sort test runs both through
it and through the radix engine alone, at every size.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any, Literal

import ccradix
import numpy as np
import numpy.typing as npt
import pytest
from ccradix import _ccradix
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bench.sort_data import DISTRIBUTIONS, KEY_DTYPES, make

Array = npt.NDArray[Any]
Sort = Callable[..., Array]


def radix_sort(
    a: Array, *, inplace: bool = False, descending: bool = False, threads: int = 1
) -> Array:
    """The radix engine whatever the size: `ccradix.sort` without its cut-over."""
    return _ccradix.sort(a, inplace, descending, threads, "auto", False)


each_sort = pytest.mark.parametrize("sort", [ccradix.sort, radix_sort], ids=["sort", "radix"])


def assert_sorted_like_numpy(got: Array, a: Array) -> None:
    want = np.sort(a)
    assert got.dtype == a.dtype
    assert got.shape == a.shape
    np.testing.assert_array_equal(got, want)  # NaNs compare equal here
    if a.dtype.kind == "f":
        # numpy leaves -0.0 and +0.0 in any order; ccradix promises -0.0 first.
        zeros = got[got == 0]
        assert not np.any(np.diff(np.signbit(zeros).astype(np.int8)) > 0)
        # Every NaN comes out as the canonical quiet NaN.
        nans = got[np.isnan(got)]
        canonical = np.array([np.nan], dtype=a.dtype).view(f"u{a.dtype.itemsize}")
        assert np.all(nans.view(f"u{a.dtype.itemsize}") == canonical[0])


def special_values(dtype: np.dtype[Any]) -> list[Any]:
    if dtype.kind == "f":
        finfo = np.finfo(dtype)
        return [
            np.nan,
            -np.nan,
            np.inf,
            -np.inf,
            0.0,
            -0.0,
            float(finfo.max),
            float(finfo.min),
            float(finfo.smallest_subnormal),
            -float(finfo.smallest_subnormal),
            1.0,
        ]
    info = np.iinfo(dtype)
    return [int(info.min), int(info.max), 0, 1, int(info.max) - 1, int(info.min) + 1]


def key_arrays(dtype: np.dtype[Any]) -> st.SearchStrategy[Array]:
    if dtype.kind == "f":
        width: Literal[32, 64] = 32 if dtype.itemsize == 4 else 64
        elements = st.floats(width=width, allow_nan=True, allow_infinity=True)
    else:
        info = np.iinfo(dtype)
        elements = st.integers(int(info.min), int(info.max))
    elements = st.one_of(elements, st.sampled_from(special_values(dtype)))
    return hnp.arrays(dtype, st.integers(0, 400), elements=elements)


@each_sort
@pytest.mark.parametrize("dtype", KEY_DTYPES, ids=lambda t: np.dtype(t).name)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_sort_matches_numpy(sort: Sort, dtype: type[np.generic], data: st.DataObject) -> None:
    a = data.draw(key_arrays(np.dtype(dtype)))
    assert_sorted_like_numpy(sort(a), a)


@each_sort
@pytest.mark.parametrize("dtype", KEY_DTYPES, ids=lambda t: np.dtype(t).name)
@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    size=st.integers(60_000, 300_000),
    specials=st.integers(0, 2000),
    duplicates=st.booleans(),
)
def test_large_sort_matches_numpy(
    sort: Sort, dtype: type[np.generic], seed: int, size: int, specials: int, duplicates: bool
) -> None:
    # Sizes past the in-cache cut-over: the out-of-cache first pass and its buckets.
    dt = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    a = make("uniform", size, dt, seed)
    if duplicates:
        a = a[rng.integers(0, 1000, size=size)]
    specials_pool = np.array(special_values(dt), dtype=dt)
    a[rng.integers(0, size, size=specials)] = specials_pool[
        rng.integers(0, len(specials_pool), specials)
    ]
    assert_sorted_like_numpy(sort(a), a)
    if sort is radix_sort:  # argsort has no cut-over: once is enough
        np.testing.assert_array_equal(ccradix.argsort(a), np.argsort(a, kind="stable"))


@pytest.mark.parametrize("dtype", KEY_DTYPES, ids=lambda t: np.dtype(t).name)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_argsort_matches_stable_numpy(dtype: type[np.generic], data: st.DataObject) -> None:
    a = data.draw(key_arrays(np.dtype(dtype)))
    got = ccradix.argsort(a)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, np.argsort(a, kind="stable"))


@pytest.mark.parametrize("dtype", KEY_DTYPES, ids=lambda t: np.dtype(t).name)
@settings(max_examples=60, deadline=None)
@given(data=st.data(), value_dtype=st.sampled_from(["i4", "f4", "u8", "f8", "M8[s]"]))
def test_sort_pairs_is_a_stable_sort_by_key(
    dtype: type[np.generic], data: st.DataObject, value_dtype: str
) -> None:
    keys = data.draw(key_arrays(np.dtype(dtype)))
    values = np.arange(len(keys)).astype(value_dtype)
    got_keys, got_values = ccradix.sort_pairs(keys, values)
    # Stable by key, with -0.0 before +0.0 as in `sort` (numpy's argsort calls them equal).
    negative_zero_last = np.where(keys == 0, ~np.signbit(keys), True)
    order = np.lexsort((negative_zero_last, keys))
    np.testing.assert_array_equal(got_keys, keys[order])
    assert got_values.dtype == values.dtype
    np.testing.assert_array_equal(got_values, values[order])


@each_sort
@pytest.mark.parametrize("dtype", KEY_DTYPES, ids=lambda t: np.dtype(t).name)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_descending_is_the_reverse(
    sort: Sort, dtype: type[np.generic], data: st.DataObject
) -> None:
    a = data.draw(key_arrays(np.dtype(dtype)))
    want = sort(a)[::-1]
    # Bit for bit: -0.0 and the canonical NaN land where the reversed order puts them.
    bits = f"u{a.dtype.itemsize}"
    np.testing.assert_array_equal(sort(a, descending=True).view(bits), want.view(bits))
    in_place = a.copy()
    assert sort(in_place, inplace=True, descending=True) is in_place
    np.testing.assert_array_equal(in_place.view(bits), want.view(bits))


SMALL_SIZES = [0, 1, 2, 33, 1000, 100_000, 250_000]


@pytest.mark.parametrize("dtype", KEY_DTYPES, ids=lambda t: np.dtype(t).name)
def test_the_cut_over_changes_nothing(dtype: type[np.generic]) -> None:
    # Either side of the size where ccradix.sort stops handing arrays to numpy: the same bits
    # as the radix engine's, signed zeros and NaNs included, copied, in place and descending.
    dt = np.dtype(dtype)
    one_thread, more_threads = _ccradix.RADIX_FROM[dt.name]
    specials = np.array(special_values(dt), dtype=dt)
    bits = f"u{dt.itemsize}"
    assert more_threads is not None  # two threads of the engine beat numpy from some size on
    for threads, radix_from in ((1, one_thread), (2, more_threads)):
        if radix_from is None:  # one thread of the engine never beats numpy's kernels here
            continue
        for n in (radix_from - 1, radix_from):
            a = make("few-unique", n, dt, seed=n)
            every = np.arange(0, n, n // 500)
            a[every] = np.resize(specials, len(every))
            for descending in (False, True):
                want = radix_sort(a, descending=descending).view(bits)
                got = ccradix.sort(a, descending=descending, threads=threads)
                np.testing.assert_array_equal(got.view(bits), want)
                in_place = a.copy()
                ccradix.sort(in_place, inplace=True, descending=descending, threads=threads)
                np.testing.assert_array_equal(in_place.view(bits), want)


@each_sort
@pytest.mark.parametrize("dtype", KEY_DTYPES, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("distribution", list(DISTRIBUTIONS))
def test_benchmark_distributions(sort: Sort, distribution: str, dtype: type[np.generic]) -> None:
    for n in SMALL_SIZES:
        a = make(distribution, n, dtype, seed=n)
        assert_sorted_like_numpy(sort(a), a)
        if n <= 100_000 and sort is radix_sort:  # argsort has no cut-over: once is enough
            np.testing.assert_array_equal(ccradix.argsort(a), np.argsort(a, kind="stable"))


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("distribution", ["uniform", "zipf", "all-equal", "few-unique"])
def test_threads_give_the_same_result(distribution: str, threads: int) -> None:
    for dtype in (np.uint32, np.float64):
        a = make(distribution, 300_000, dtype, seed=threads)
        np.testing.assert_array_equal(radix_sort(a, threads=threads), np.sort(a))
        np.testing.assert_array_equal(
            ccradix.argsort(a, threads=threads), np.argsort(a, kind="stable")
        )


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("distribution", ["uniform", "zipf", "exponential", "few-unique"])
@pytest.mark.parametrize("dtype", [np.uint32, np.int64, np.float32, np.float64])
def test_large_inputs(distribution: str, dtype: type[np.generic], threads: int) -> None:
    # Past the in-cache size (2 MiB) for every key width, where the first pass picks its
    # strategy from the keys: a fixed top digit, a digit aimed lower, LSD over the whole
    # input (Zipf), or the 16-bit prefix table (normal floats).
    a = make(distribution, 1_200_000, dtype, seed=threads)
    assert_sorted_like_numpy(radix_sort(a, threads=threads), a)
    np.testing.assert_array_equal(ccradix.argsort(a, threads=threads), np.argsort(a, kind="stable"))


@pytest.mark.parametrize("threads", [1, 2])
def test_huge_float_inputs(threads: int) -> None:
    # From 2^26 keys, 64-bit floats go by a table of 20-bit prefixes (16 bits below that).
    n = 1 << 26
    a = make("uniform", n, np.float64, seed=threads)
    every = np.arange(0, n, n // 1000)
    a[every] = np.resize(np.array(special_values(a.dtype), dtype=a.dtype), len(every))
    assert_sorted_like_numpy(radix_sort(a, threads=threads), a)


def test_the_cut_over_follows_numpys_kernels() -> None:
    # With numpy's AVX-512 kernels turned off (or absent), numpy sorts with its other ones and
    # ccradix takes the sizes measured against those.
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    avx512 = [
        t for t in __cpu_dispatch__ if __cpu_features__.get(t) and ("AVX512" in t or t == "X86_V4")
    ]
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": " ".join(avx512)}
    code = "from ccradix import _ccradix; print(_ccradix.NUMPY_SORT)"
    child = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert child.stdout.strip() == "other"
    # Here: "avx512" only where numpy has those kernels (and they beat the engine: not on Zen 4).
    assert _ccradix.NUMPY_SORT in ("avx512", "other")
    if _ccradix.NUMPY_SORT == "avx512":
        assert __cpu_features__.get("AVX512_SKX")


def _log_uniform_uint64(n: int, seed: int) -> npt.NDArray[np.uint64]:
    # Bit lengths spread evenly up to 40: most keys are small yet vary in many bits, and no
    # 2^16 range holds most of them, so the first pass goes by magnitude.
    exponents = np.random.default_rng(seed).uniform(0, 40, n)
    return (2.0**exponents).astype(np.uint64)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    ("keys", "itemsize"),
    [
        (lambda n, seed: make("uniform", n, np.uint32, seed=seed), 4),
        (lambda n, seed: make("uniform", n, np.uint64, seed=seed), 8),
        (lambda n, seed: make("uniform", n, np.float64, seed=seed), 8),  # a table of prefixes
        (_log_uniform_uint64, 8),  # buckets by magnitude
    ],
    ids=["uint32", "uint64", "float64", "log-uniform uint64"],
)
def test_inputs_beyond_the_cache_measure_their_first_pass(
    keys: Callable[[int, int], npt.NDArray[Any]], itemsize: int, threads: int
) -> None:
    # From 32 MiB of keys the first pass times two ways of writing on slices of the input and
    # finishes with the faster; both together must still place every key.
    a = keys((32 << 20) // itemsize + 12_345, threads)
    np.testing.assert_array_equal(radix_sort(a, threads=threads), np.sort(a))


@pytest.mark.parametrize("first_pass", ["simple", "buffered", "streaming", "measured"])
def test_first_pass_variants_agree(first_pass: str) -> None:
    for dtype in KEY_DTYPES:
        a = make("uniform", 400_000, dtype, seed=7)
        got = _ccradix.sort(a, first_pass=first_pass)  # type: ignore[arg-type]
        np.testing.assert_array_equal(got, np.sort(a))
