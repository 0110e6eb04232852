#!/usr/bin/env bash
# Builds (once) the virtual environment holding the real LiteLLM proxy that the gateway
# tests put in front of `remix-pipeline serve`, and prints its Python interpreter.
#
# LiteLLM is not a dependency of remix-pipeline (its proxy extra is ~120 packages), so it
# lives in a venv of its own, pinned to the release the tests' measurements were made with.
# Idempotent: an environment that already holds that release is only checked (well under a
# second). A build interrupted half-way is detected (no completion marker) and redone.
# Settings (environment):
#   REMIX_PIPELINE_LITELLM_VENV  venv directory (default: .remix-pipeline/litellm-venv in the repo)
# Usage: PY=$(bash scripts/litellm.sh)
# The tests start proxies from Python (tests/support/litellm_proxy.py) with that interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUIREMENT="litellm[proxy]==1.108.7"
VERSION="${REQUIREMENT##*==}"
VENV="${REMIX_PIPELINE_LITELLM_VENV:-$PWD/.remix-pipeline/litellm-venv}"
MARKER="$VENV/.remix-pipeline-requirement"

log() { echo "litellm.sh: $*" >&2; }

built() {
    [ -x "$VENV/bin/python" ] && [ -x "$VENV/bin/litellm" ] &&
        [ "$(cat "$MARKER" 2>/dev/null)" = "$REQUIREMENT" ] &&
        [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))' \
            2>/dev/null)" = "$VERSION" ]
}

if ! built; then
    mkdir -p "$(dirname "$VENV")"
    # Two test runs of one checkout may build at once: the second waits for the first.
    exec 9>"$VENV.lock"
    flock 9
    if ! built; then
        log "building $REQUIREMENT in $VENV (about a minute with a warm pip cache)"
        start=$SECONDS
        rm -rf "$VENV"
        python3 -m venv "$VENV"
        "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
        "$VENV/bin/python" -m pip install --quiet "$REQUIREMENT" >&2
        # The first import compiles the proxy's modules; doing it here keeps it out of the
        # first proxy start, whose readiness the tests wait for with a timeout.
        if ! out="$(LITELLM_LOCAL_MODEL_COST_MAP=True "$VENV/bin/python" -c \
            'import litellm.proxy.proxy_server' 2>&1)"; then
            log "the installed proxy does not import:"
            echo "$out" | tail -n 20 >&2
            exit 1
        fi
        echo "$REQUIREMENT" >"$MARKER"
        log "built in $((SECONDS - start)) s"
    fi
    flock -u 9
fi

echo "$VENV/bin/python"
