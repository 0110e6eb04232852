#!/usr/bin/env bash
# Sets up a virtual environment with the test extras and runs the whole suite.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
# A throwaway PostgreSQL on loopback for the Dagster-storage and ledger tests that need one.
# Under CI it must start; elsewhere a machine without it only makes those tests skip.
if [ -z "${REMIX_PIPELINE_TEST_POSTGRES_URL:-}" ]; then
    if REMIX_PIPELINE_TEST_POSTGRES_URL="$(bash scripts/postgres.sh)"; then
        export REMIX_PIPELINE_TEST_POSTGRES_URL
    elif [ -n "${CI:-}" ]; then
        exit 1
    else
        unset REMIX_PIPELINE_TEST_POSTGRES_URL
        echo "PostgreSQL not available: its tests will skip" >&2
    fi
fi
# Headless Chromium for the report's browser tests: always checked under CI, where those
# tests must run; elsewhere a failed install only makes them skip with a reason.
if [ -n "${CI:-}" ]; then
    bash scripts/install-browser.sh
elif ! command -v chromium >/dev/null 2>&1; then
    bash scripts/install-browser.sh || echo "chromium not installed: browser tests will skip" >&2
fi
exec .venv/bin/python -m pytest "$@"
