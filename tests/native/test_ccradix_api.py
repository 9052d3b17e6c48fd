"""ccradix's calling conventions: copies, in-place sorts, refusals, lifetimes, the GIL."""

from __future__ import annotations

import gc
import sys
import threading
import time
import tracemalloc

import ccradix
import numpy as np
import pytest

from bench.sort_data import make


def test_copy_leaves_the_input_alone() -> None:
    a = make("uniform", 100_000, np.int64)
    before = a.copy()
    out = ccradix.sort(a)
    assert out is not a
    assert not np.shares_memory(out, a)
    np.testing.assert_array_equal(a, before)
    np.testing.assert_array_equal(out, np.sort(before))


@pytest.mark.parametrize("n", [0, 1, 5, 100_000])
def test_inplace_sorts_the_given_array(n: int) -> None:
    a = make("uniform", n, np.float32)
    want = np.sort(a)
    out = ccradix.sort(a, inplace=True)
    assert out is a
    np.testing.assert_array_equal(a, want)


class OwnSort(np.ndarray):
    def sort(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("the subclass's sort was called")


@pytest.mark.parametrize("n", [100, 3_000_000])
def test_subclasses_are_sorted_as_arrays(n: int) -> None:
    # Either side of the cut-over to numpy's sort: ndarray's sort, never the subclass's.
    a = make("uniform", n, np.float64).view(OwnSort)
    want = np.sort(a.view(np.ndarray))
    np.testing.assert_array_equal(ccradix.sort(a), want)
    assert ccradix.sort(a, inplace=True) is a
    np.testing.assert_array_equal(a.view(np.ndarray), want)


def test_non_contiguous_input_is_copied_first() -> None:
    base = make("uniform", 200_001, np.uint32)
    view = base[::3]
    np.testing.assert_array_equal(ccradix.sort(view), np.sort(view))
    np.testing.assert_array_equal(ccradix.argsort(view), np.argsort(view, kind="stable"))
    reversed_view = base[::-1]
    np.testing.assert_array_equal(ccradix.sort(reversed_view), np.sort(base))


def test_inplace_refuses_what_it_cannot_sort_in_place() -> None:
    base = make("uniform", 1000, np.uint64)
    with pytest.raises(ValueError, match="C-contiguous"):
        ccradix.sort(base[::2], inplace=True)
    frozen = base.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        ccradix.sort(frozen, inplace=True)


@pytest.mark.parametrize("dtype", ["i2", "u1", "f2", "c8", "O", "U3", ">u4", ">f8", "bool"])
def test_unsupported_dtypes_raise_type_error(dtype: str) -> None:
    a = np.zeros(10, dtype=dtype)
    with pytest.raises(TypeError, match="ccradix sorts"):
        ccradix.sort(a)
    with pytest.raises(TypeError, match="ccradix sorts"):
        ccradix.argsort(a)


def test_shapes_and_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="one-dimensional"):
        ccradix.sort(np.zeros((3, 3), dtype=np.uint32))
    with pytest.raises(ValueError, match="one-dimensional"):
        ccradix.sort(np.uint32(3))
    with pytest.raises(ValueError, match="threads"):
        ccradix.sort(np.zeros(3, dtype=np.uint32), threads=0)
    with pytest.raises(ValueError, match="length"):
        ccradix.sort_pairs(np.zeros(3, dtype=np.uint32), np.zeros(4, dtype=np.uint32))
    with pytest.raises(TypeError, match="values"):
        ccradix.sort_pairs(np.zeros(3, dtype=np.uint32), np.zeros(3, dtype=np.int16))
    with pytest.raises(TypeError, match="values"):
        ccradix.sort_pairs(np.zeros(3, dtype=np.uint32), np.zeros(3, dtype=object))


def test_lists_are_accepted() -> None:
    assert ccradix.sort([3, 1, 2]).tolist() == [1, 2, 3]  # int64 on this platform
    assert ccradix.argsort([3.0, 1.0, 2.0]).tolist() == [1, 2, 0]


def test_empty_and_single_element() -> None:
    for dtype in (np.uint32, np.float64):
        assert ccradix.sort(np.array([], dtype=dtype)).shape == (0,)
        assert ccradix.argsort(np.array([], dtype=dtype)).shape == (0,)
        assert ccradix.sort(np.array([7], dtype=dtype)).tolist() == [7]
        keys, values = ccradix.sort_pairs(np.array([7], dtype=dtype), np.array([1.5]))
        assert keys.tolist() == [7]
        assert values.tolist() == [1.5]


def test_no_reference_or_memory_leak_over_many_calls() -> None:
    a = make("uniform", 50_000, np.uint64)
    v = np.arange(len(a), dtype=np.float64)
    refs_a, refs_v = sys.getrefcount(a), sys.getrefcount(v)

    def churn() -> None:
        for _ in range(50):
            ccradix.sort(a)
            ccradix.sort(a[::2])
            ccradix.argsort(a)
            ccradix.sort_pairs(a, v)
            with pytest.raises(TypeError):
                ccradix.sort(a.astype(np.int16))

    churn()  # warm up: numpy caches, the kept scratch buffer
    gc.collect()
    tracemalloc.start()
    try:
        churn()
        gc.collect()
        current, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert current < 1_000_000, f"{current} bytes still allocated after the calls"
    assert sys.getrefcount(a) == refs_a
    assert sys.getrefcount(v) == refs_v


def test_results_own_their_memory() -> None:
    out = ccradix.sort(make("uniform", 1000, np.int32))
    assert out.flags.owndata or out.base is None or out.base is not None  # any owner works
    keys, values = ccradix.sort_pairs(np.arange(5, dtype=np.int64)[::-1], np.arange(5.0))
    del out
    gc.collect()
    assert keys.tolist() == [0, 1, 2, 3, 4]
    assert values.tolist() == [4.0, 3.0, 2.0, 1.0, 0.0]


def test_release_scratch_returns_the_kept_buffer() -> None:
    ccradix.sort(make("uniform", 500_000, np.uint64))
    assert ccradix.release_scratch() > 0
    assert ccradix.release_scratch() == 0


def test_the_gil_is_released_during_a_sort() -> None:
    # A long sort runs in a worker thread; this thread must get to run Python code while that
    # sort is still inside C++, which it cannot if the sort keeps the GIL.
    a = make("uniform", 30_000_000, np.uint64)
    started = threading.Event()
    finished = threading.Event()

    def worker() -> None:
        started.set()
        ccradix.sort(a)
        finished.set()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert started.wait(timeout=30)
        deadline = time.monotonic() + 60
        steps = 0
        while steps < 1000 and not finished.is_set() and time.monotonic() < deadline:
            steps += 1  # Python bytecode: needs the GIL
        assert steps == 1000, "no progress while the sort ran"
        assert not finished.is_set(), "the sort ended before this thread could run"
    finally:
        thread.join(timeout=120)
    assert finished.is_set()
