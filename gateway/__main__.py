"""`python -m gateway [serve]` runs the gateway; `setup` has nothing to prepare (no schema)."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from gateway.config import GatewaySettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway")
    parser.add_argument("command", nargs="?", default="serve", choices=("serve", "setup"))
    args = parser.parse_args(argv)
    if args.command == "setup":
        return 0
    settings = GatewaySettings()
    trusted = settings.forwarded_allow_ips.strip()
    uvicorn.run(
        "gateway.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        log_config=None,
        access_log=False,  # the gateway writes its own access lines, with the request id
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
        timeout_graceful_shutdown=10,
        backlog=4096,
        server_header=False,  # no software banner; the upstream's is dropped too
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
