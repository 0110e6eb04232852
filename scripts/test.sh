#!/usr/bin/env bash
# Sets up a virtual environment with the test extras and runs the whole suite.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# The real LiteLLM proxy for the gateway tests lives in a venv of its own (not a dependency);
# its build (about a minute when cold, instant once built) runs in the background, beside
# the project's install and PostgreSQL's start. Under CI it must succeed; elsewhere a failed
# build only makes the gateway tests skip with a reason.
litellm_pid=""
if [ -z "${REMIX_PIPELINE_LITELLM_PYTHON:-}" ]; then
    litellm_out="$(mktemp)"
    litellm_log="$(mktemp)"
    # In a session of its own, so that leaving early (a failed step below) stops the whole
    # build rather than orphaning its pip.
    setsid bash scripts/litellm.sh >"$litellm_out" 2>"$litellm_log" &
    litellm_pid=$!
    trap 'kill -- "-$litellm_pid" 2>/dev/null || true; rm -f "$litellm_out" "$litellm_log"' EXIT
fi
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
# A throwaway Redis on loopback, the Celery broker of the cluster test (tests/cluster/): under
# CI it must start; elsewhere the cluster test skips without it.
if [ -z "${REMIX_PIPELINE_TEST_REDIS_URL:-}" ]; then
    if REMIX_PIPELINE_TEST_REDIS_URL="$(bash scripts/redis.sh)"; then
        export REMIX_PIPELINE_TEST_REDIS_URL
    elif [ -n "${CI:-}" ]; then
        exit 1
    else
        unset REMIX_PIPELINE_TEST_REDIS_URL
        echo "Redis not available: the cluster test will skip" >&2
    fi
fi
# Headless Chromium for the report's browser tests: always checked under CI, where those
# tests must run; elsewhere a failed install only makes them skip with a reason.
if [ -n "${CI:-}" ]; then
    bash scripts/install-browser.sh
elif ! command -v chromium >/dev/null 2>&1; then
    bash scripts/install-browser.sh || echo "chromium not installed: browser tests will skip" >&2
fi
if [ -n "$litellm_pid" ]; then
    if wait "$litellm_pid"; then
        trap - EXIT
        REMIX_PIPELINE_LITELLM_PYTHON="$(cat "$litellm_out")"
        export REMIX_PIPELINE_LITELLM_PYTHON
        grep '^litellm.sh: built' "$litellm_log" >&2 || true
    else
        trap - EXIT
        echo "LiteLLM's venv could not be built; the end of its log:" >&2
        tail -n 30 "$litellm_log" >&2
        if [ -n "${CI:-}" ]; then
            exit 1
        fi
        echo "LiteLLM not available: the gateway tests will skip" >&2
    fi
    rm -f "$litellm_out" "$litellm_log"
fi
# Two workers, each taking the next test as it frees up (worksteal: a few tests run minutes,
# most under a second): the suite mostly waits on servers, jobs and subprocesses, and took
# 24 to 29 minutes on one worker, about 15 on two. Every test keeps to its own ports, temp
# directories and databases, so none depends on running alone; `-n 0` (given after) runs
# them in one process.
exec .venv/bin/python -m pytest -n 2 --dist worksteal "$@"
