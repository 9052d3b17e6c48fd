"""`python -m services.quotes setup` (migrations, then Debian's fortunes once) and
`python -m services.quotes import FILE...`, run as real processes against the run's database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.services.quotes.helpers import CLASSICS, connect, empty_tables, migrate
from tests.support.servers import ROOT
from tests.support.stores import Stores


def run_cli(
    stores: Stores, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.quotes", *args],
        cwd=ROOT,
        env={**os.environ, **stores.env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def count_quotes(stores: Stores) -> int:
    conn = await connect(stores)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM quote"))
    finally:
        await conn.close()


async def test_setup_loads_the_fortune_files_once(stores: Stores, tmp_path: Path) -> None:
    await migrate(stores)
    await empty_tables(stores)
    fortunes = tmp_path / "fortunes"
    fortunes.mkdir()
    shutil.copy(CLASSICS, fortunes / "classics")
    (fortunes / "classics.dat").write_bytes(b"strfile index")
    (fortunes / "notes.txt").write_text("not a fortune file\n%\nnor this\n")
    env = {"QUOTES_FORTUNES_DIR": str(fortunes)}

    first = run_cli(stores, "setup", env=env)
    assert first.returncode == 0, first.stderr
    assert "9 added, 1 skipped" in first.stderr
    assert await count_quotes(stores) == 9

    conn = await connect(stores)
    try:
        await conn.execute("DELETE FROM quote WHERE author = 'Oscar Wilde'")
    finally:
        await conn.close()
    second = run_cli(stores, "setup", env=env)
    assert second.returncode == 0, second.stderr
    assert "loaded before" in second.stderr
    # Once means once: a quote removed since is not brought back.
    assert await count_quotes(stores) == 8


async def test_setup_without_the_fortunes_says_so_and_goes_on(
    stores: Stores, tmp_path: Path
) -> None:
    await migrate(stores)
    await empty_tables(stores)
    result = run_cli(stores, "setup", env={"QUOTES_FORTUNES_DIR": str(tmp_path / "missing")})
    assert result.returncode == 0, result.stderr
    assert "apt-get install fortunes" in result.stderr
    assert await count_quotes(stores) == 0


async def test_import_command(stores: Stores, tmp_path: Path) -> None:
    await migrate(stores)
    await empty_tables(stores)
    more = tmp_path / "more.fortune"
    more.write_text("Well done is better than well said.\n%\nA brand new quote.\n%\n")
    result = run_cli(stores, "import", str(CLASSICS), str(more), str(tmp_path / "absent"))
    assert result.returncode == 1
    assert f"{CLASSICS}: 9 added, 1 skipped" in result.stdout
    assert f"{more}: 1 added, 1 skipped" in result.stdout
    assert "absent: no such file" in result.stderr
    assert await count_quotes(stores) == 10
