"""Gateway overhead: the same cheap service endpoint direct, through the gateway and through nginx
(the reference reverse proxy), loaded by wrk from another core.

    uv run python -m bench.gateway_bench [--quick]

Servers (the service, the gateway, nginx) are pinned to CPU 0 and wrk to CPU 1, so a throughput
ratio is a CPU-cost ratio: at saturation one request costs 1/throughput seconds of CPU 0, and a
proxy's overhead per request is 1/throughput(through it) - 1/throughput(direct).

Scenarios:
- trivial endpoint, 64 keep-alive connections: direct, gateway, nginx, and the gateway with the
  JWT check and rate limits on (a protected route: token verification, the revocation lookup and
  two rate-limit counters in one Redis round trip);
- an endpoint taking 10 ms, 8 connections: the same four.

Needs wrk, nginx and taskset (`apt-get install -y wrk nginx`). Figures go to docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
from joserfc import jwt
from joserfc.jwk import OKPKey

from bench.report import write_section

ROOT = Path(__file__).resolve().parent.parent
SERVER_CPU = "0"
LOADGEN_CPU = "1"
NGINX_CONF = Path(__file__).resolve().parent / "nginx" / "gateway_bench.conf"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_tools() -> None:
    missing = [tool for tool in ("wrk", "nginx", "taskset") if shutil.which(tool) is None]
    if missing:
        sys.exit(
            f"missing: {', '.join(missing)}. Install them with: apt-get install -y wrk nginx "
            "(taskset is in util-linux)"
        )
    if (os.cpu_count() or 1) < 2:
        sys.exit("needs two CPUs: servers on one, the load generator on the other")


def wait_ready(
    url: str, process: subprocess.Popen[bytes], log: Path, deadline_s: float = 30
) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{url}: exited with {process.returncode}\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"{url} not ready after {deadline_s} s\n{log.read_text()[-2000:]}")


@contextmanager
def pinned(
    name: str, command: list[str], *, env: Mapping[str, str], ready_url: str, workdir: Path
) -> Iterator[psutil.Process]:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *command],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(ready_url, process, log)
        yield psutil.Process(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class Run:
    rps: float
    requests: int


def wrk(url: str, *, connections: int, seconds: float, headers: Mapping[str, str]) -> Run:
    command = ["taskset", "-c", LOADGEN_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        sys.exit(f"wrk saw errors on {url}:\n{output}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    count = re.search(r"(\d+) requests in", output)
    if not rps or not count:
        sys.exit(f"no throughput in wrk's output:\n{output}")
    return Run(float(rps.group(1)), int(count.group(1)))


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        for member in (process, *process.children(recursive=True)):
            times = member.cpu_times()
            total += times.user + times.system
    return total


@dataclass(frozen=True)
class Target:
    label: str
    url: str
    headers: Mapping[str, str]
    # The proxy's processes (none for direct) and the service's: their CPU time is read around
    # each run, so the cost per request is measured, not only inferred from throughput.
    proxy: list[psutil.Process]
    service: list[psutil.Process]


@dataclass(frozen=True)
class Figures:
    rps: float
    proxy_us: float
    service_us: float
    # Share of CPU 0 that other processes of the machine took during the run shown.
    foreign: float


def cpu0_busy_seconds() -> float:
    """CPU 0's busy time so far (everything but idle and iowait), from /proc/stat."""
    with open("/proc/stat") as stat:
        for line in stat:
            if line.startswith(f"cpu{SERVER_CPU} "):
                ticks = [int(v) for v in line.split()[1:]]
                return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    raise RuntimeError("no CPU 0 line in /proc/stat")


def measure(
    targets: list[Target], *, connections: int, seconds: float, rounds: int
) -> dict[str, Figures]:
    """Per target: throughput from its quietest round (the one in which other processes took
    the least of CPU 0; the machine is shared), CPU per request as the median of all rounds.
    Targets take turns, so slow drift hits them all alike."""
    for target in targets:  # warm-up: imports, pools, caches
        wrk(target.url, connections=connections, seconds=1, headers=target.headers)
    found: dict[str, list[Figures]] = {t.label: [] for t in targets}
    for _ in range(rounds):
        for target in targets:
            proxy_before, service_before = cpu_seconds(target.proxy), cpu_seconds(target.service)
            busy_before, started = cpu0_busy_seconds(), time.monotonic()
            run = wrk(target.url, connections=connections, seconds=seconds, headers=target.headers)
            proxy = cpu_seconds(target.proxy) - proxy_before
            service = cpu_seconds(target.service) - service_before
            busy = cpu0_busy_seconds() - busy_before
            foreign = max(0.0, busy - proxy - service) / (time.monotonic() - started)
            figures = Figures(
                run.rps, proxy / run.requests * 1e6, service / run.requests * 1e6, foreign
            )
            found[target.label].append(figures)
            print(
                f"  {target.label:<28} {run.rps:8.0f} req/s   proxy {figures.proxy_us:6.0f} µs/req"
                f"   service {figures.service_us:6.0f} µs/req   other load {foreign:4.0%}",
                flush=True,
            )
    results = {}
    for label, runs in found.items():
        quietest = min(runs, key=lambda f: f.foreign)
        results[label] = Figures(
            quietest.rps,
            statistics.median(f.proxy_us for f in runs),
            statistics.median(f.service_us for f in runs),
            quietest.foreign,
        )
    return results


def bench_token(key: OKPKey) -> str:
    now = int(time.time())
    claims = {
        "iss": "tinkerstack",
        "aud": "tinkerstack",
        "sub": "bench",
        "name": "bench",
        "roles": [],
        "iat": now,
        "exp": now + 3600,
        "jti": uuid.uuid4().hex,
        "sid": uuid.uuid4().hex,
    }
    return jwt.encode({"alg": "Ed25519", "kid": key.kid}, claims, key, algorithms=["Ed25519"])


def cpu_ratio(results: Mapping[str, Figures], label: str) -> float:
    """Throughput against direct as the CPU times predict it: CPU 0 spends service + proxy time
    per request through a proxy, service time alone direct."""
    figures = results[label]
    return results["direct"].service_us / (figures.service_us + figures.proxy_us)


def table(results: Mapping[str, Figures], labels: list[str], *, cpu_bound: bool) -> list[str]:
    base = results["direct"].rps
    head = "| path | req/s | × direct |"
    rule = "| --- | ---: | ---: |"
    if cpu_bound:
        head += " × direct from CPU times |"
        rule += " ---: |"
    lines = [
        head + " proxy CPU per request | service CPU per request | other load on CPU 0 |",
        rule + " ---: | ---: | ---: |",
    ]
    for label in labels:
        figures = results[label]
        proxy = "—" if label == "direct" else f"{figures.proxy_us:.0f} µs"
        derived = f" {cpu_ratio(results, label):.2f} |" if cpu_bound else ""
        lines.append(
            f"| {label} | {figures.rps:.0f} | {figures.rps / base:.2f} |{derived} {proxy} "
            f"| {figures.service_us:.0f} µs | {figures.foreign:.0%} |"
        )
    return lines


def goal_lines(trivial: Mapping[str, Figures], slow: Mapping[str, Figures]) -> list[str]:
    direct, gateway, nginx = trivial["direct"], trivial["gateway"], trivial["nginx"]
    guarded = trivial[GUARDED]
    floor = trivial[FLOOR]
    ratio = gateway.rps / direct.rps
    nginx_overhead = 1 / nginx.rps - 1 / direct.rps
    gateway_overhead = 1 / gateway.rps - 1 / direct.rps
    cost_ratio = gateway.proxy_us / nginx.proxy_us
    slow_ratio = slow["gateway"].rps / slow["direct"].rps

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    if nginx_overhead > 0:
        by_throughput = (
            f"{gateway_overhead / nginx_overhead:.1f}× nginx's from throughput "
            f"({verdict(gateway_overhead / nginx_overhead <= 2.5)})"
        )
    else:
        by_throughput = (
            "not measurable from throughput in this run: the service answered nginx "
            "faster than it answered wrk directly"
        )
    return [
        f"- Trivial endpoint through the gateway: **{ratio:.2f}× direct** by throughput, "
        f"{cpu_ratio(trivial, 'gateway'):.2f}× by CPU times "
        f"(goal ≥ 0.5×: {verdict(ratio >= 0.5)} by throughput, "
        f"{verdict(cpu_ratio(trivial, 'gateway') >= 0.5)} by CPU times).",
        f"- Gateway overhead per request: **{gateway.proxy_us:.0f} µs of CPU against nginx's "
        f"{nginx.proxy_us:.0f} µs = {cost_ratio:.1f}×** measured (goal ≤ 2.5×: "
        f"{verdict(cost_ratio <= 2.5)}); {by_throughput}.",
        f"- Endpoint taking 10 ms, 8 concurrent, through the gateway: **{slow_ratio:.2f}× "
        f"direct** (goal ≥ 0.95×: {verdict(slow_ratio >= 0.95)}).",
        f"- A bare uvicorn + aiohttp forwarder that does nothing else (aiohttp's client was the "
        f"gateway's before its own lean one) costs {floor.proxy_us:.0f} µs per request = "
        f"{floor.proxy_us / nginx.proxy_us:.1f}× nginx's; the gateway, with all its own work "
        f"(headers, request id, checks, metrics, log), costs "
        f"{abs(gateway.proxy_us - floor.proxy_us):.0f} µs "
        f"{'less' if gateway.proxy_us < floor.proxy_us else 'more'} than that.",
        f"- With the JWT check and rate limits on: trivial **{guarded.rps / direct.rps:.2f}× "
        f"direct** ({guarded.proxy_us:.0f} µs of gateway CPU per request), 10 ms "
        f"**{slow[GUARDED].rps / slow['direct'].rps:.2f}× direct**.",
    ]


GUARDED = "gateway + JWT + rate limits"
FLOOR = "bare uvicorn + aiohttp forwarder"
LABELS = ["direct", "gateway", "nginx", GUARDED]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs, one round")
    parser.add_argument("--no-report", action="store_true", help="print only")
    args = parser.parse_args()
    require_tools()
    # The 10 ms scenario is latency-bound and the noisier one: it gets more rounds.
    seconds, rounds, slow_rounds = (3.0, 1, 1) if args.quick else (6.0, 3, 5)

    key = OKPKey.generate_key("Ed25519", parameters={"kid": "bench"})
    jwks = {"keys": [{**key.as_dict(private=False), "alg": "Ed25519", "use": "sig"}]}
    ports = {name: free_port() for name in ("service", "gateway", "guarded", "nginx", "floor")}
    service_url = f"http://127.0.0.1:{ports['service']}"
    common = {
        "ENVIRONMENT": "test",
        "NAMESPACE": f"bench{uuid.uuid4().hex[:8]}",
        "JWKS_URL": f"{service_url}/auth/.well-known/jwks.json",
    }
    gateway_env = {
        **common,
        "GATEWAY_QUOTES_URLS": service_url,
        "GATEWAY_CHAT_URLS": service_url,
        "GATEWAY_RATE_LIMIT_IP": "0",
        "GATEWAY_RATE_LIMIT_USER": "0",
    }
    # Limits high enough never to refuse: what is measured is the cost of checking them.
    guarded_env = {
        **gateway_env,
        "GATEWAY_RATE_LIMIT_IP": "1000000000",
        "GATEWAY_RATE_LIMIT_USER": "1000000000",
    }

    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        nginx_dir = workdir / "nginx"
        nginx_dir.mkdir()
        conf = nginx_dir / "nginx.conf"
        conf.write_text(
            NGINX_CONF.read_text()
            .replace("@DIR@", str(nginx_dir))
            .replace("@PORT@", str(ports["nginx"]))
            .replace("@UPSTREAM@", f"127.0.0.1:{ports['service']}")
        )
        python = sys.executable
        service = stack.enter_context(
            pinned(
                "service",
                [python, "-m", "bench.gateway_backend"],
                env={**common, "BENCH_PORT": str(ports["service"]), "BENCH_JWKS": json.dumps(jwks)},
                ready_url=f"{service_url}/healthz",
                workdir=workdir,
            )
        )
        proxies = {
            name: stack.enter_context(
                pinned(
                    name,
                    [python, "-m", "gateway"],
                    env={**env, "GATEWAY_PORT": str(ports[name])},
                    ready_url=f"http://127.0.0.1:{ports[name]}/healthz",
                    workdir=workdir,
                )
            )
            for name, env in (("gateway", gateway_env), ("guarded", guarded_env))
        }
        proxies["nginx"] = stack.enter_context(
            pinned(
                "nginx",
                ["nginx", "-c", str(conf), "-p", str(nginx_dir)],
                env={},
                ready_url=f"http://127.0.0.1:{ports['nginx']}/quotes/ping",
                workdir=workdir,
            )
        )
        proxies["floor"] = stack.enter_context(
            pinned(
                "floor",
                [
                    python,
                    "-m",
                    "uvicorn",
                    "bench.gateway_floor:app",
                    "--port",
                    str(ports["floor"]),
                    "--loop",
                    "uvloop",
                    "--http",
                    "httptools",
                    "--no-access-log",
                    "--no-proxy-headers",
                    "--log-level",
                    "warning",
                ],
                env={"FLOOR_UPSTREAM": service_url},
                ready_url=f"http://127.0.0.1:{ports['floor']}/quotes/ping",
                workdir=workdir,
            )
        )
        auth = {"Authorization": f"Bearer {bench_token(key)}"}

        def targets(endpoint: str, *, floor: bool = False) -> list[Target]:
            def via(name: str, prefix: str = "quotes") -> str:
                return f"http://127.0.0.1:{ports[name]}/{prefix}/{endpoint}"

            return [
                Target("direct", f"{service_url}/quotes/{endpoint}", {}, [], [service]),
                Target("gateway", via("gateway"), {}, [proxies["gateway"]], [service]),
                Target("nginx", via("nginx"), {}, [proxies["nginx"]], [service]),
                Target(GUARDED, via("guarded", "chat"), auth, [proxies["guarded"]], [service]),
            ] + ([Target(FLOOR, via("floor"), {}, [proxies["floor"]], [service])] if floor else [])

        print("trivial endpoint, 64 connections", flush=True)
        trivial = measure(
            targets("ping", floor=True), connections=64, seconds=seconds, rounds=rounds
        )
        print("10 ms endpoint, 8 connections", flush=True)
        slow = measure(targets("slow"), connections=8, seconds=seconds, rounds=slow_rounds)

    markdown = "\n".join(
        [
            "## Gateway overhead",
            "",
            "`uv run python -m bench.gateway_bench`"
            + (" `--quick` (one short round: indicative only)" if args.quick else "")
            + f". wrk, 1 thread; {rounds} (trivial endpoint) and {slow_rounds} (10 ms endpoint) "
            f"interleaved rounds of {seconds:g} s per path. The machine is shared with other "
            "work that the pinning cannot keep off CPU 0, so each throughput shown is the path's "
            "quietest round (least CPU 0 taken by other processes, shown in the last column), "
            "and CPU times per request are medians over all rounds. "
            "Service, gateway and nginx pinned to CPU 0, wrk to CPU 1 (`taskset`), so "
            "throughput ratios are CPU-cost ratios; the CPU time of each process is also read "
            "around every run, which gives each proxy's own cost per request directly (steadier "
            "on a shared machine than the difference of two throughputs). The service is built "
            "like every service (`shared.app.create_service_app`: request ids, metrics, access "
            "log); nginx runs one worker, keep-alive to the service, an access log. The JWT run "
            "uses a protected route: token verification (cached per token after the first "
            "signature check), then the revocation lookup and the per-user and per-address "
            "counters in one Redis round trip (Redis itself is not pinned).",
            "",
            *goal_lines(trivial, slow),
            "",
            "Trivial endpoint, 64 keep-alive connections:",
            "",
            *table(trivial, [*LABELS, FLOOR], cpu_bound=True),
            "",
            "Endpoint taking 10 ms, 8 keep-alive connections:",
            "",
            *table(slow, LABELS, cpu_bound=False),
        ]
    )
    print()
    print(markdown)
    if not args.no_report:
        write_section("gateway", markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
