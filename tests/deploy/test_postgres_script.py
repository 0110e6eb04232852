"""scripts/postgres.sh run as root, as CI runs it: from a fresh clone that the `postgres`
user may not be able to enter (below a 0700 temporary or home directory) as well as from one
it can. The cluster starts, a second call prints the same URL, the URL connects, and `stop`
stops that cluster."""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from tests.support.needs import missing
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "postgres.sh"


def _preconditions() -> None:
    # The layout only matters when the script runs the server as another user, i.e. as root.
    if os.geteuid() != 0:
        missing("scripts/postgres.sh runs the server as `postgres` only when run as root")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        missing("there is no `postgres` user: install PostgreSQL from Debian packages")
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb") and not shutil.which("initdb"):
        missing("PostgreSQL is not installed: `bash scripts/postgres.sh` installs it")


def _postgres_can_enter(path: Path) -> bool:
    check = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(path)], cwd="/")
    return check.returncode == 0


def _clone_in(parent: Path) -> Path:
    """A minimal clone: the script finds its repo from its own path."""
    clone = parent / "clone"
    (clone / "scripts").mkdir(parents=True)
    for name in ("postgres.sh", "owner.sh"):
        shutil.copy2(SCRIPT.parent / name, clone / "scripts" / name)
    return clone


def _shared_cluster_dirs(clone: Path) -> list[Path]:
    digest = hashlib.sha256(str(clone.resolve()).encode()).hexdigest()[:16]
    return [Path(base) / f"remix-pipeline-postgres-{digest}" for base in ("/var/tmp", "/tmp")]


@pytest.fixture(params=["private", "reachable"])
def clone(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    _preconditions()
    if request.param == "private":
        parent = tmp_path / "private"
        parent.mkdir(mode=0o700)
        parent.chmod(0o700)
    else:
        parent = Path(tempfile.mkdtemp(prefix="remix-pipeline-test-", dir="/var/tmp"))
        parent.chmod(0o755)
    clone = _clone_in(parent)
    assert _postgres_can_enter(clone) == (request.param == "reachable")
    try:
        yield clone
    finally:
        subprocess.run(
            ["bash", str(clone / "scripts" / "postgres.sh"), "stop"],
            cwd="/",
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
        )
        for directory in _shared_cluster_dirs(clone):
            shutil.rmtree(directory, ignore_errors=True)
        if request.param == "reachable":
            shutil.rmtree(parent, ignore_errors=True)


def _run(clone: Path, *args: str, port: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REMIX_PIPELINE_PG_PORT": str(port)}
    env.pop("REMIX_PIPELINE_PG_DIR", None)
    # Called from inside the clone, as scripts/test.sh does: `postgres` may not enter the cwd.
    return subprocess.run(
        ["bash", "scripts/postgres.sh", *args],
        cwd=clone,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _current_database(url: str) -> str:
    with psycopg2.connect(url, connect_timeout=10) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        (name,) = cursor.fetchone()
    conn.close()
    return name


def test_the_script_starts_connects_repeats_and_stops_its_cluster(clone: Path) -> None:
    port = free_port()
    first = _run(clone, port=port)
    assert first.returncode == 0, first.stderr
    assert "could not change directory" not in first.stderr
    url = first.stdout.strip()
    assert url == f"postgresql://remix:remix@127.0.0.1:{port}/remix_test"
    assert _current_database(url) == "remix_test"

    again = _run(clone, port=port)
    assert (again.returncode, again.stdout.strip()) == (0, url), again.stderr
    assert again.stderr == ""

    shared = [d for d in _shared_cluster_dirs(clone) if d.exists()]
    if _postgres_can_enter(clone):
        assert shared == []
        cluster = clone / ".remix-pipeline" / "postgres"
    else:
        # Outside the clone, where only its owner may look: a throwaway cluster's password is
        # in the URL, but the data are nobody else's business.
        assert len(shared) == 1 and not (clone / ".remix-pipeline" / "postgres").exists()
        cluster = shared[0]
        info = cluster.lstat()
        assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700
        assert pwd.getpwuid(info.st_uid).pw_name == "postgres"
    assert (cluster / "data" / "postmaster.pid").exists()

    stop = _run(clone, "stop", port=port)
    assert stop.returncode == 0, stop.stderr
    assert "could not change directory" not in stop.stderr
    assert not (cluster / "data" / "postmaster.pid").exists()
    with pytest.raises(psycopg2.OperationalError):
        _current_database(url)
