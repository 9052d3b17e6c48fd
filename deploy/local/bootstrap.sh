#!/usr/bin/env bash
# The Python side of a fresh machine: uv (installed when missing), the C++ toolchain that the
# native extension builds with, then `uv sync --frozen`. Needs only python3 (3.11 or newer).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$HOME/.local/bin:$PATH"

say() { printf 'bootstrap | %s\n' "$*" >&2; }
as_root() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }

apt_install() {
    say "installing $* with apt"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2
}

# --user keeps uv out of the system's Python (Debian marks that one externally managed), except
# in a virtual environment, which has no user site and whose bin/ is on PATH already.
user_flag() {
    python3 -c 'import sys; sys.exit(sys.prefix != sys.base_prefix)' && echo --user || true
}

pip_install_uv() {
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install $(user_flag) --quiet uv
}

install_uv() {
    if python3 -m pip --version >/dev/null 2>&1 && pip_install_uv; then return 0; fi
    say "python3 has no pip: trying ensurepip"
    if python3 -m ensurepip $(user_flag) >/dev/null 2>&1 && pip_install_uv; then return 0; fi
    if as_root; then
        apt_install python3-pip && pip_install_uv && return 0
    fi
    if command -v curl >/dev/null; then
        say "installing uv with its official installer"
        curl -LsSf https://astral.sh/uv/install.sh | env UV_NO_MODIFY_PATH=1 sh && return 0
    fi
    say "cannot install uv: install it (https://docs.astral.sh/uv/getting-started/installation/)"
    say "or pip for python3 (sudo apt-get install python3-pip), then run this again"
    return 1
}

if ! command -v uv >/dev/null; then
    say "uv not found: installing it"
    install_uv
    command -v uv >/dev/null || { say "uv installed but not on PATH"; exit 1; }
fi

# The native extension (native/, built by `uv sync`) needs a C++ compiler, CMake and the
# Python headers.
if [ -f native/CMakeLists.txt ]; then
    need=()
    command -v c++ >/dev/null || need+=(g++)
    command -v cmake >/dev/null || need+=(cmake)
    python3 -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
        || need+=(python3-dev)
    if [ ${#need[@]} -gt 0 ]; then
        if as_root; then
            apt_install "${need[@]}"
        else
            say "missing ${need[*]} (to build native/): sudo apt-get install -y ${need[*]}"
            exit 1
        fi
    fi
fi

uv sync --frozen
