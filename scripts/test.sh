#!/usr/bin/env bash
# Sets up a virtual environment with the test extras and runs the whole suite.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
# A throwaway PostgreSQL on loopback for the Dagster-storage and ledger tests that need one.
if [ -z "${REMIX_PIPELINE_TEST_POSTGRES_URL:-}" ]; then
    REMIX_PIPELINE_TEST_POSTGRES_URL="$(bash scripts/postgres.sh)"
    export REMIX_PIPELINE_TEST_POSTGRES_URL
fi
exec .venv/bin/python -m pytest "$@"
