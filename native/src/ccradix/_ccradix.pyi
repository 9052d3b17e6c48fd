"""Typed interface of the C++ extension (see ccradix/__init__.py for the documented API)."""

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

def sort(
    a: npt.NDArray[Any],
    inplace: bool = False,
    descending: bool = False,
    threads: int = 1,
    first_pass: Literal["auto", "simple", "buffered", "streaming", "measured"] = "auto",  # noqa: S107
    cut_over: bool = True,
) -> npt.NDArray[Any]: ...

RADIX_FROM: dict[str, tuple[int | None, int | None]]
NUMPY_SORT: Literal["avx512", "other"]

def argsort(a: npt.NDArray[Any], threads: int = 1) -> npt.NDArray[np.int64]: ...
def sort_pairs(
    keys: npt.NDArray[Any],
    values: npt.NDArray[Any],
    descending: bool = False,
    threads: int = 1,
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]: ...
def release_scratch() -> int: ...
def _reference_std_sort(a: npt.NDArray[Any]) -> None: ...
def _reference_lsd8(a: npt.NDArray[Any]) -> None: ...
