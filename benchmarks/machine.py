"""The machine and software the numbers were measured on, for RESULTS.md."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

PACKAGES = (
    "remix-pipeline",
    "dagster",
    "openai",
    "httpx",
    "starlette",
    "uvicorn",
    "SQLAlchemy",
    "pandas",
    "pyarrow",
    "av",
)


def memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        return None
    return None


def load_average() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def describe() -> list[str]:
    ram = memory_gib()
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return [
        f"CPU cores: {os.cpu_count()} ({platform.processor() or platform.machine()})",
        f"RAM: {ram:.1f} GiB" if ram else "RAM: unknown",
        f"OS: {platform.platform()}",
        f"Python: {sys.version.split()[0]} ({platform.python_implementation()})",
        "Packages: " + ", ".join(versions),
    ]
