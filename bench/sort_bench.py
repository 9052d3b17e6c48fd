"""Benchmark ccradix against numpy.sort / numpy.argsort, in one process, as ratios.

    uv run python -m bench.sort_bench            # full run (about 15 minutes), writes BENCHMARKS.md
    uv run python -m bench.sort_bench --quick    # small sizes only, a smoke test of the harness

The machine is shared and noisy: every case interleaves the contenders and keeps the best of
several runs of each, and every figure that matters is a ratio to numpy measured alongside.

numpy is compared at its best on the machine. numpy picks its sort kernel at import from the CPU
features it detects, and the widest kernel is not always the fastest (x86-simd-sort's AVX-512
quicksort is several times slower than its AVX2 one on AMD Zen 4, where `vpcompressd` to memory
is microcoded). So the benchmark first times np.sort in two child processes, with numpy's default
dispatch and with the AVX-512 targets disabled (`NPY_DISABLE_CPU_FEATURES`), and when the latter
is more than 10 % faster it re-executes itself with that variable set: every numpy figure of the
run then comes from the faster kernel, still measured in the same process as ccradix. No CPU model
is looked up; only the measurement decides.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import ccradix
import numpy as np
import numpy.typing as npt
from ccradix import _ccradix

from bench.report import write_section
from bench.sort_data import DISTRIBUTIONS, make

Array = npt.NDArray[Any]

ROOT = Path(__file__).resolve().parent.parent
DISPATCH_VAR = "NPY_DISABLE_CPU_FEATURES"
RESTRICTED_FEATURES = "X86_V4 AVX512_ICL AVX512_SPR"
# Set on the re-executed run: the probe's findings (JSON), so it neither probes nor re-executes.
PROBE_VAR = "TINKERSTACK_SORT_BENCH_NUMPY_PROBE"
PROBE_N = 2 * 10**6
PROBE_DTYPES = ("uint32", "float64")
RESTRICTED_MARGIN = 1.10  # the restricted dispatch is used only when this much faster

Dispatch = Literal["default", "restricted"]

# Run in a fresh interpreter, so numpy reads NPY_DISABLE_CPU_FEATURES from the environment given.
_CHILD_CODE = """
import gc, json, sys, time
import ccradix
import numpy as np
from bench.sort_data import make

try:
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    targets = [t for t in __cpu_dispatch__ if __cpu_features__.get(t)]
except ImportError:
    targets = []
cases, repeats = json.loads(sys.argv[1]), int(sys.argv[2])
results = []
for dtype, n in cases:
    a = make("uniform", n, dtype, seed=7)
    best = [float("inf"), float("inf")]
    for _ in range(repeats):
        for i, f in enumerate((lambda: np.sort(a), lambda: ccradix.sort(a))):
            gc.collect()
            t0 = time.perf_counter()
            f()
            best[i] = min(best[i], time.perf_counter() - t0)
    results.append({"dtype": dtype, "n": n, "numpy_s": best[0], "ccradix_s": best[1]})
print(json.dumps({"targets": targets, "results": results}))
"""


def dispatch_env(dispatch: Dispatch) -> dict[str, str]:
    """The environment of this process with numpy's dispatch set to `dispatch`."""
    env = {k: v for k, v in os.environ.items() if k not in (DISPATCH_VAR, PROBE_VAR)}
    if dispatch == "restricted":
        env[DISPATCH_VAR] = RESTRICTED_FEATURES
    return env


def time_in_child(dispatch: Dispatch, cases: Sequence[tuple[str, int]], repeats: int) -> Any:
    """np.sort and ccradix.sort of uniform keys, interleaved, in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", _CHILD_CODE, json.dumps(cases), str(repeats)],
        capture_output=True,
        text=True,
        env=dispatch_env(dispatch),
        cwd=ROOT,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{dispatch} dispatch child failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def numpy_targets() -> list[str]:
    """numpy's dispatch targets enabled in this process, lowest first."""
    try:
        umath = importlib.import_module("numpy._core._multiarray_umath")
    except ImportError:
        return []
    features: dict[str, bool] = getattr(umath, "__cpu_features__", {})
    return [t for t in getattr(umath, "__cpu_dispatch__", []) if features.get(t)]


def probe_dispatch() -> dict[str, Any]:
    """Time np.sort under both dispatches (child processes) and choose the faster."""
    cases = [(t, PROBE_N) for t in PROBE_DTYPES]
    probe: dict[str, Any] = {"default": time_in_child("default", cases, 5)}
    try:
        probe["restricted"] = time_in_child("restricted", cases, 5)
    except RuntimeError as exc:  # e.g. a numpy that rejects the feature names
        print(exc, file=sys.stderr)
        probe["restricted"] = None
    chosen: Dispatch = "default"
    if probe["restricted"] is not None:
        ratios = [
            d["numpy_s"] / r["numpy_s"]
            for d, r in zip(
                probe["default"]["results"], probe["restricted"]["results"], strict=True
            )
        ]
        speedup = math.prod(ratios) ** (1 / len(ratios))  # geometric mean over the dtypes
        probe["speedup"] = speedup
        if speedup > RESTRICTED_MARGIN:
            chosen = "restricted"
    probe["chosen"] = chosen
    return probe


def numpy_at_its_best() -> dict[str, Any]:
    """The probe's findings; re-executes this benchmark first if numpy must run otherwise."""
    if PROBE_VAR in os.environ:
        found: dict[str, Any] = json.loads(os.environ[PROBE_VAR])
        return found
    probe = probe_dispatch()
    for name in ("default", "restricted"):
        if probe[name] is not None:
            times = ", ".join(
                f"{r['dtype']} {r['numpy_s'] * 1e3:.1f} ms" for r in probe[name]["results"]
            )
            print(f"numpy {name} dispatch ({' '.join(probe[name]['targets'])}): {times}")
    env = dispatch_env(probe["chosen"])
    if env.get(DISPATCH_VAR) != os.environ.get(DISPATCH_VAR):
        # numpy fixed its dispatch when this process imported it: start afresh with the variable
        # set (or unset). exec replaces the process, so nothing of this numpy survives.
        print(
            f"numpy.sort is faster with {DISPATCH_VAR}={env.get(DISPATCH_VAR, '')!r}: re-executing"
        )
        env[PROBE_VAR] = json.dumps(probe)
        sys.stdout.flush()
        sys.stderr.flush()
        argv = [sys.executable, "-m", "bench.sort_bench", *sys.argv[1:]]
        os.execve(sys.executable, argv, env)  # noqa: S606 (this interpreter, this module)
    return probe


def best_times(funcs: Sequence[Callable[[], object]], repeats: int, calls: int = 1) -> list[float]:
    """Best wall time of one call of each function, running them interleaved `repeats` times;
    each time is the mean of `calls` calls in a row (microsecond sorts are timed in batches)."""
    best = [float("inf")] * len(funcs)
    for _ in range(repeats):
        for i, f in enumerate(funcs):
            gc.collect()
            t0 = time.perf_counter()
            for _ in range(calls):
                f()
            best[i] = min(best[i], (time.perf_counter() - t0) / calls)
    return best


def repeats_for(n: int, quick: bool) -> int:
    if quick:
        return 3
    return 9 if n <= 10**6 else 5


def human(n: int) -> str:
    exp = len(str(n)) - 1
    lead, rest = divmod(n, 10**exp)
    return f"{lead}e{exp}" if rest == 0 and exp > 0 else str(n)


@dataclass
class Row:
    case: str
    numpy_s: float
    ccradix_s: float

    @property
    def ratio(self) -> float:
        return self.numpy_s / self.ccradix_s

    def cells(self) -> str:
        return f"| {self.case} | {self.numpy_s:.4f} | {self.ccradix_s:.4f} | {self.ratio:.2f}× |"


def sort_case(dist: str, dtype: str, n: int, quick: bool, threads: int = 1) -> Row:
    a = make(dist, n, dtype, seed=1)
    np_s, cc_s = best_times(
        [lambda: np.sort(a), lambda: ccradix.sort(a, threads=threads)],
        repeats_for(n, quick),
        calls=max(1, 10**5 // max(n, 1)),
    )
    label = f"{dist} {dtype} {human(n)}" + (f" threads={threads}" if threads > 1 else "")
    return Row(label, np_s, cc_s)


def radix_alone_case(dtype: str, n: int, quick: bool) -> Row:
    a = make("uniform", n, dtype, seed=8)
    np_s, radix_s = best_times(
        [lambda: np.sort(a), lambda: _ccradix.sort(a, cut_over=False)], repeats_for(n, quick)
    )
    return Row(f"radix engine alone, uniform {dtype} {n:,}", np_s, radix_s)


def argsort_case(dist: str, dtype: str, n: int, quick: bool) -> Row:
    a = make(dist, n, dtype, seed=2)
    np_s, cc_s = best_times(
        [lambda: np.argsort(a, kind="stable"), lambda: ccradix.argsort(a)],
        max(2, repeats_for(n, quick) // 2),
    )
    return Row(f"argsort {dist} {dtype} {human(n)}", np_s, cc_s)


def copy_bandwidth_bound(n: int) -> float:
    """Seconds for four read+write passes over n uint32: the memory bound of a 4-pass LSD."""
    src = np.ones(n, dtype=np.uint32)
    dst = np.empty_like(src)
    dst[:] = 0
    (copy_s,) = best_times([lambda: np.copyto(dst, src)], 5)
    return 4 * copy_s


def peak_extra_memory(dtype: str, n: int, inplace: bool) -> float:
    """Peak RSS growth of one radix sort beyond its result, in copies of the input (fresh
    process). The radix engine alone: the cut-over might hand the array to numpy's sort."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (large) parent process.
    code = f"""
import json, numpy as np
from ccradix import _ccradix
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
a = np.random.default_rng(0).integers(0, 2**31, {n}, dtype="{dtype}")
before = hwm()
_ccradix.sort(a, {inplace}, False, 1, "auto", False)
after = hwm()
result_copies = 0 if {inplace} else 1
print(json.dumps((after - before) / a.nbytes - result_copies))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return float(json.loads(result.stdout))


def dispatch_section(probe: dict[str, Any], quick: bool) -> list[str]:
    """Which numpy dispatch the run used and why, and numpy's default dispatch for comparison."""
    chosen: Dispatch = probe["chosen"]
    here = numpy_targets()
    top = here[-1] if here else "baseline"
    restricted_env = f'`{DISPATCH_VAR}="{RESTRICTED_FEATURES}"`'
    lines = ["", "### numpy's dispatch", ""]
    if chosen == "restricted":
        lines.append(
            f"numpy ran with {restricted_env} (top dispatch target {top}): its sort is "
            f"{probe['speedup']:.2f}× faster that way here than with its default dispatch, so "
            "every numpy figure above and below, goals included, is numpy at its best on this "
            "machine, which any numpy user can get by setting that variable."
        )
    else:
        why = (
            f"the restricted dispatch ({restricted_env}) was not more than "
            f"{(RESTRICTED_MARGIN - 1) * 100:.0f} % faster ({probe['speedup']:.2f}×)"
            if probe["restricted"] is not None
            else f"numpy did not run with {restricted_env}"
        )
        lines.append(f"numpy ran with its default dispatch (top target {top}): {why}.")
    lines += [
        "",
        f"Probe (np.sort of {human(PROBE_N)} uniform keys, child processes, best of 5):",
        "",
    ]
    lines.append("| dispatch | targets | " + " | ".join(f"{t} (s)" for t in PROBE_DTYPES) + " |")
    lines.append("|---|---|" + "---:|" * len(PROBE_DTYPES))
    for name in ("default", "restricted"):
        if probe[name] is not None:
            cells = " | ".join(f"{r['numpy_s']:.4f}" for r in probe[name]["results"])
            used = " (used)" if name == chosen else ""
            lines.append(f"| {name}{used} | {' '.join(probe[name]['targets'])} | {cells} |")
    if probe["restricted"] is None:
        return lines

    n = 10**6 if quick else 10**7
    cases = [("uint32", n), ("uint64", n)]
    repeats = 3 if quick else 5
    default = time_in_child("default", cases, repeats)["results"]
    restricted = time_in_child("restricted", cases, repeats)["results"]
    lines += [
        "",
        "#### numpy's default dispatch on this machine",
        "",
        "The same sorts under both dispatches, each in its own child process (best of "
        f"{repeats}); ccradix is timed alongside in each, and each speed-up is numpy / ccradix "
        "within one process.",
        "",
        "| case | numpy default (s) | numpy restricted (s) | ccradix vs default | "
        "ccradix vs restricted |",
        "|---|---:|---:|---:|---:|",
    ]
    for d, r in zip(default, restricted, strict=True):
        row = (
            f"| uniform {d['dtype']} {human(d['n'])} | {d['numpy_s']:.4f} | {r['numpy_s']:.4f} "
            f"| {d['numpy_s'] / d['ccradix_s']:.2f}× | {r['numpy_s'] / r['ccradix_s']:.2f}× |"
        )
        lines.append(row)
        print(row, flush=True)
    return lines


def run(quick: bool, probe: dict[str, Any]) -> str:
    out: list[str] = []
    goals: list[str] = []

    def table(title: str, rows: list[Row], note: str = "") -> None:
        out.append(f"\n### {title}\n")
        if note:
            out.append(note + "\n")
        out.append("| case | numpy (s) | ccradix (s) | speed-up |")
        out.append("|---|---:|---:|---:|")
        for r in rows:
            out.append(r.cells())
            print(r.cells(), flush=True)

    def goal(text: str, value: str, met: bool) -> None:
        line = f"| {text} | {value} | {'met' if met else '**not met**'} |"
        goals.append(line)
        print(line, flush=True)

    big = 10**6 if quick else 10**8
    mid = 10**5 if quick else 10**7

    # Uniform keys across sizes.
    sizes = [10**3, 10**4, 10**5, 10**6] + ([] if quick else [10**7, 10**8])
    rows = [sort_case("uniform", "uint32", n, quick) for n in sizes]
    table("Uniform uint32, single thread", rows)
    u32_big = next(r for r in rows if r.case.endswith(human(big)))
    u32_mid = next(r for r in rows if r.case.endswith(human(mid)))
    small = [r for r in rows if r.case.endswith(("1e3", "1e4"))]

    rows64 = [sort_case("uniform", t, big, quick) for t in ("uint64", "int64", "float64")]
    rows64 += [sort_case("uniform", t, mid, quick) for t in ("uint64", "int64", "float64")]
    rows64 += [sort_case("uniform", t, mid, quick) for t in ("int32", "float32")]
    table("64-bit and signed / float keys, single thread", rows64)

    # The cut-over: the radix engine alone either side of the size where ccradix.sort stops
    # handing arrays to numpy.sort.
    cut_rows = []
    sizes = []
    for t, (one_thread, more_threads) in _ccradix.RADIX_FROM.items():
        shown = "never" if one_thread is None else f"{one_thread:,}"
        sizes.append(f"{t} {shown} (two threads or more: {more_threads:,})")
        for n in (10**6, 10**7) if one_thread is None else (one_thread // 2, one_thread * 2):
            if quick and n > 10**6:
                continue
            cut_rows.append(radix_alone_case(t, n, quick))
    table(
        "The cut-over to numpy.sort",
        cut_rows,
        f"Against numpy's {_ccradix.NUMPY_SORT} sort kernels, ccradix.sort uses the radix "
        f"engine from these sizes on, one thread: {'; '.join(sizes)}, and numpy's sort below "
        "them; every other table times ccradix.sort with it. Here the radix engine alone, at "
        "half and at twice each size (at 1e6 and 1e7 where one thread never uses it).",
    )

    # In place: no result array to allocate (and page in) on either side.
    inplace_rows = []
    for t in ("uint32", "uint64"):
        for n in (mid, big):
            src = make("uniform", n, t, seed=6)
            work = src.copy()
            best_np = best_cc = float("inf")
            for _ in range(repeats_for(n, quick)):
                np.copyto(work, src)
                t0 = time.perf_counter()
                work.sort()
                best_np = min(best_np, time.perf_counter() - t0)
                np.copyto(work, src)
                t0 = time.perf_counter()
                ccradix.sort(work, inplace=True)
                best_cc = min(best_cc, time.perf_counter() - t0)
            inplace_rows.append(Row(f"uniform {t} {human(n)} in place", best_np, best_cc))
    table("In place (ndarray.sort vs sort(inplace=True))", inplace_rows)

    # Guardrail: every distribution, n >= 1e5.
    dist_sizes = [10**5, 10**6] + ([] if quick else [10**7])
    dist_rows = [
        sort_case(d, t, n, quick)
        for n in dist_sizes
        for t in ("uint32", "float64")
        for d in DISTRIBUTIONS
    ]
    table("Every distribution (ips4o suite)", dist_rows)

    arg_rows = [argsort_case("uniform", t, mid, quick) for t in ("uint32", "uint64", "float64")]
    arg_rows.append(argsort_case("zipf", "uint32", mid, quick))
    table("Stable argsort vs numpy.argsort(kind='stable')", arg_rows)

    # Two threads (2 cores, shared memory bandwidth).
    def with_threads(keys: Array, threads: int) -> Callable[[], object]:
        return lambda: ccradix.sort(keys, threads=threads)

    thread_rows = []
    for t in ("uint32", "uint64"):
        keys = make("uniform", big, t, seed=3)
        one, two = best_times(
            [with_threads(keys, 1), with_threads(keys, 2)], repeats_for(big, quick)
        )
        thread_rows.append((f"uniform {t} {human(big)}", one, two))
    out.append("\n### Two threads\n")
    out.append("| case | threads=1 (s) | threads=2 (s) | speed-up |")
    out.append("|---|---:|---:|---:|")
    for label, one, two in thread_rows:
        out.append(f"| {label} | {one:.4f} | {two:.4f} | {one / two:.2f}× |")
        print(out[-1], flush=True)

    # First-pass designs, and the reference points.
    a = make("uniform", big, "uint32", seed=4)
    FirstPass = Literal["simple", "buffered", "streaming", "measured"]
    variants: list[FirstPass] = ["simple", "buffered", "streaming", "measured"]

    def with_first_pass(v: FirstPass) -> Callable[[], object]:
        return lambda: _ccradix.sort(a, first_pass=v)

    np_s, *variant_s = best_times(
        [lambda: np.sort(a), *(with_first_pass(v) for v in variants)], repeats_for(big, quick)
    )
    ref = [
        Row(f"first pass: {v}, uint32 {human(big)}", np_s, s)
        for v, s in zip(variants, variant_s, strict=True)
    ]
    table("First-pass designs (uniform uint32)", ref)

    ref_n = 10**5 if quick else 10**7
    r = make("uniform", ref_n, "uint32", seed=5)
    np_s, cc_s, std_s, lsd_s = best_times(
        [
            lambda: np.sort(r),
            lambda: ccradix.sort(r),
            lambda: _ccradix._reference_std_sort(r.copy()),
            lambda: _ccradix._reference_lsd8(r.copy()),
        ],
        3,
    )
    out.append("\n### Reference points (same harness, uniform uint32 " + human(ref_n) + ")\n")
    out.append("| sort | seconds | vs numpy.sort |")
    out.append("|---|---:|---:|")
    for label, s in [
        ("numpy.sort", np_s),
        ("ccradix.sort", cc_s),
        ("std::sort (copy + sort)", std_s),
        ("8-bit LSD radix (copy + sort)", lsd_s),
    ]:
        out.append(f"| {label} | {s:.4f} | {np_s / s:.2f}× |")
        print(out[-1], flush=True)

    bound = copy_bandwidth_bound(big)
    extra = peak_extra_memory("uint32", 10**6 if quick else 2 * 10**7, inplace=True)
    extra_copy = peak_extra_memory("uint32", 10**6 if quick else 2 * 10**7, inplace=False)

    # Goals of the issue. Where ccradix.sort hands the array to numpy, the engine alone is shown
    # beside it.
    def with_engine(row: Row, dtype: str, n: int) -> str:
        if _ccradix.RADIX_FROM[dtype][0] is not None:
            return f"{row.ratio:.2f}×"
        alone = radix_alone_case(dtype, n, quick)
        return (
            f"{row.ratio:.2f}× (numpy's sort); radix engine alone {alone.ccradix_s:.3f} s, "
            f"{alone.ratio:.2f}×"
        )

    goal(
        f"uniform uint32 {human(big)}: ≤ 0.30 s and ≥ 3× numpy.sort",
        f"{u32_big.ccradix_s:.3f} s, {with_engine(u32_big, 'uint32', big)}",
        u32_big.ccradix_s <= 0.30 and u32_big.ratio >= 3,
    )
    goal(
        f"uniform uint32 {human(big)} vs the 4-pass LSD memory bound ({bound:.3f} s)",
        f"{u32_big.ccradix_s / bound:.2f}× the bound",
        True,
    )
    u64 = rows64[0]
    goal(
        f"uniform uint64 {human(big)}: ≥ 2.5× numpy.sort",
        with_engine(u64, "uint64", big),
        u64.ratio >= 2.5,
    )
    goal(
        f"uniform uint32 {human(mid)}: ≥ 3× numpy.sort",
        with_engine(u32_mid, "uint32", mid),
        u32_mid.ratio >= 3,
    )
    for other in rows64[1:3]:
        within = other.ccradix_s <= 1.10 * u64.ccradix_s
        goal(
            f"{other.case}: within 10 % of uint64",
            f"{other.ccradix_s / u64.ccradix_s:.2f}× the uint64 time",
            within,
        )
    worst_arg = min(arg_rows, key=lambda r: r.ratio)
    goal(
        "stable argsort: ≥ 5× numpy (worst case)",
        f"{worst_arg.ratio:.2f}× ({worst_arg.case})",
        worst_arg.ratio >= 5,
    )
    worst = min(dist_rows, key=lambda r: r.ratio)
    goal(
        "every distribution, n ≥ 1e5: never slower than numpy/1.1",
        f"worst {worst.ratio:.2f}× ({worst.case})",
        worst.ratio >= 1 / 1.1,
    )
    worst_small = min(small, key=lambda r: r.ratio)
    goal(
        "small n (1e3, 1e4): no worse than numpy.sort",
        f"worst {worst_small.ratio:.2f}× ({worst_small.case})",
        worst_small.ratio >= 1 / 1.1,
    )
    goal(
        "peak extra memory ≤ one copy of the input",
        f"{extra:.2f} copies in place, {extra_copy:.2f} beyond the result when copying",
        extra <= 1.05 and extra_copy <= 1.05,
    )

    dispatch = dispatch_section(probe, quick)
    used = (
        f'numpy with `{DISPATCH_VAR}="{RESTRICTED_FEATURES}"` (faster here than its default '
        "dispatch, see numpy's dispatch below)"
        if probe["chosen"] == "restricted"
        else "numpy with its default dispatch (see numpy's dispatch below)"
    )
    header = [
        "## ccradix (native/): CC-Radix sort vs numpy",
        "",
        f"numpy {np.__version__}; `{'--quick' if quick else 'full'}` run of "
        "`uv run python -m bench.sort_bench`. Speed-up = numpy seconds / ccradix seconds, "
        "best of several interleaved runs. Single thread unless stated. "
        f"Every numpy figure, goals included, is {used}.",
        "",
        "### Goals (issue 4)",
        "",
        "| goal | measured | |",
        "|---|---|---|",
        *goals,
    ]
    return "\n".join(header + dispatch + out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument("--no-write", action="store_true", help="print, do not write the report")
    args = parser.parse_args()
    probe = numpy_at_its_best()
    markdown = run(args.quick, probe)
    if not args.no_write:
        write_section("sort", markdown)
    print("\n" + markdown)


if __name__ == "__main__":
    main()
