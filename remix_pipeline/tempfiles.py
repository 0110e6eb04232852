"""Atomic writes through temporary files named after the process that owns them.

Media downloads and the lineage Parquet are written to a temporary file and renamed into
place. A process killed between the two (SIGKILL, power loss) leaves that temporary file
behind. Its name carries host and pid, so the next writer removes exactly the files whose
owner on this machine is dead, never one a live writer (here or on another host sharing the
folder) is still filling.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import tempfile
from pathlib import Path

from upath import UPath

from remix_pipeline.crashpoints import crash_point

_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def _host() -> str:
    return _UNSAFE.sub("_", socket.gethostname())


def owned_prefix(final_name: str) -> str:
    """Prefix for `tempfile.mkstemp`: hidden, named after the target and this process."""
    return f".{final_name}.{_host()}-{os.getpid()}."


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_abandoned(directory: Path, final_name: str, suffix: str) -> list[Path]:
    """Remove temporary files for `final_name` whose owning process on this host is gone."""
    lead = f".{final_name}."
    host = _host()
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(lead) and name.endswith(suffix)):
            continue
        owner = name[len(lead) :].split(".", 1)[0]
        owner_host, sep, pid = owner.rpartition("-")
        if not sep or owner_host != host or not pid.isdigit():
            continue
        if int(pid) == os.getpid() or pid_alive(int(pid)):
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def write_atomically(destination: str, payload: bytes, *, crash_label: str | None = None) -> str:
    """Write `payload` so that readers see the old file or the new one, never a partial one.

    Locally: a temporary file beside the target, named after this process (leftovers of dead
    writers are swept first), renamed into place. Object stores publish an object only when
    its upload completes, so there the object is written directly.
    """
    target = UPath(destination)
    if target.protocol not in ("", "file", "local"):
        with target.open("wb") as handle:
            handle.write(payload)
        return str(target)
    path = Path(target.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_abandoned(path.parent, path.name, ".tmp")
    fd, tmp = tempfile.mkstemp(prefix=owned_prefix(path.name), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if crash_label:
                crash_point(f"{crash_label}.temp_created")
            handle.write(payload)
        if crash_label:
            crash_point(f"{crash_label}.before_replace")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return str(path)
