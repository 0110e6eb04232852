#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster on a loopback port for the tests and prints its URL.
#
# Installs PostgreSQL from Debian packages with apt-get when no server binaries are found.
# Idempotent: when the cluster under the data directory is already running, it only prints
# the URL. Runs the server as the `postgres` user when started as root (PostgreSQL refuses
# to run as root). Settings (environment):
#   REMIX_PIPELINE_PG_DIR   cluster directory (default: .remix-pipeline/postgres in the repo;
#                           as root, when `postgres` cannot enter the repo, for instance a
#                           clone below a 0700 temporary or home directory:
#                           /var/tmp/remix-pipeline-postgres-<hash of the repo path>)
#   REMIX_PIPELINE_PG_PORT  loopback port (default: 55432)
# Usage: URL=$(bash scripts/postgres.sh)          stop: bash scripts/postgres.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd -P)"

PG_PORT="${REMIX_PIPELINE_PG_PORT:-55432}"
PG_DB="remix_test"
PG_USER="remix"
PG_PASSWORD="remix"

log() { echo "postgres.sh: $*" >&2; }

find_bindir() {
    local candidate
    if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir
        return 0
    fi
    for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$candidate/initdb" ]; then
            echo "$candidate"
            return 0
        fi
    done
    if command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return 0
    fi
    return 1
}

install_postgres() {
    if ! command -v apt-get >/dev/null 2>&1; then
        log "PostgreSQL is not installed and apt-get is not available; install PostgreSQL >= 13"
        exit 1
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    log "installing PostgreSQL from Debian packages"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        postgresql >&2
}

BINDIR="$(find_bindir || true)"
if [ -z "$BINDIR" ]; then
    install_postgres
    BINDIR="$(find_bindir)"
fi

# As root, the cluster belongs to `postgres` (PostgreSQL refuses to run as root); otherwise
# to the calling user.
OWNER=""
if [ "$(id -u)" -eq 0 ]; then
    OWNER="postgres"
fi
# shellcheck source=scripts/owner.sh
. "$REPO/scripts/owner.sh"

# The cluster directory. The default lies in the repo, which the script makes traversable
# for `postgres` up from .remix-pipeline; above the repo it changes nothing, so when
# `postgres` cannot get there the cluster moves to a directory named after the repo path
# (the same one on every call, so `stop` finds what the start made).
if [ -n "${REMIX_PIPELINE_PG_DIR:-}" ]; then
    case "$REMIX_PIPELINE_PG_DIR" in
    /*) PG_DIR="$REMIX_PIPELINE_PG_DIR" ;;
    *) PG_DIR="$REPO/$REMIX_PIPELINE_PG_DIR" ;;
    esac
else
    PG_DIR="$REPO/.remix-pipeline/postgres"
    if [ "$(id -u)" -eq 0 ] && ! owner_can_enter "$REPO"; then
        repo_hash="$(printf '%s' "$REPO" | sha256sum | cut -c1-16)"
        PG_DIR=""
        for base in /var/tmp /tmp; do
            if [ -d "$base" ] && owner_can_enter "$base"; then
                PG_DIR="$base/remix-pipeline-postgres-$repo_hash"
                PG_DIR_SHARED=1
                break
            fi
        done
        if [ -z "$PG_DIR" ]; then
            log "user postgres cannot enter $REPO, /var/tmp or /tmp: set REMIX_PIPELINE_PG_DIR to a directory it can reach"
            exit 1
        fi
    fi
fi
DATA="$PG_DIR/data"
SOCKETS="$PG_DIR/run"

if [ "${1:-}" = "stop" ]; then
    if [ -f "$DATA/postmaster.pid" ]; then
        as_owner "$BINDIR/pg_ctl" -D "$DATA" -m fast -w stop >&2
    fi
    exit 0
fi

if [ "$(id -u)" -eq 0 ] && [ -n "${PG_DIR_SHARED:-}" ]; then
    # A world-writable parent: use the name only if nobody else took it first.
    mkdir -m 700 "$PG_DIR" 2>/dev/null || true
    if [ -L "$PG_DIR" ] || [ ! -d "$PG_DIR" ] ||
        ! [[ "$(stat -c %U "$PG_DIR")" =~ ^(root|postgres)$ ]]; then
        log "$PG_DIR is not a directory of root or postgres: remove it or set REMIX_PIPELINE_PG_DIR"
        exit 1
    fi
    chmod 700 "$PG_DIR"
    chown postgres "$PG_DIR"
    # Says whose cluster this is, for whoever finds it left behind.
    printf '%s\n' "$REPO" >"$PG_DIR/repo"
elif [ "$(id -u)" -eq 0 ]; then
    mkdir -p "$PG_DIR"
    chown postgres "$PG_DIR"
    # The owner must be able to reach the directory through its parents.
    chmod o+x "$(dirname "$PG_DIR")" 2>/dev/null || true
    if ! owner_can_enter "$PG_DIR"; then
        log "user postgres cannot enter $PG_DIR: set REMIX_PIPELINE_PG_DIR to a directory it can reach"
        exit 1
    fi
else
    mkdir -p "$PG_DIR"
fi

if [ ! -f "$DATA/PG_VERSION" ]; then
    # In the cluster directory, where its owner can read it (a private TMPDIR may not be).
    pwfile="$PG_DIR/pwfile"
    echo "$PG_PASSWORD" >"$pwfile"
    chmod 644 "$pwfile"
    as_owner "$BINDIR/initdb" -D "$DATA" -U "$PG_USER" --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-sync >/dev/null
    rm -f "$pwfile"
    as_owner mkdir -p "$SOCKETS"
fi

port_busy() {
    python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', int(sys.argv[1]))) != 0)" "$1"
}

if as_owner "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    # Already running: on the port it was started on.
    [ -f "$PG_DIR/port" ] && PG_PORT="$(cat "$PG_DIR/port")"
else
    # Another cluster (say, a second checkout's) may hold the default port: take a free one.
    if [ -z "${REMIX_PIPELINE_PG_PORT:-}" ] && port_busy "$PG_PORT"; then
        PG_PORT="$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")"
    fi
    echo "$PG_PORT" >"$PG_DIR/port"
    # Throwaway cluster: durability is traded for speed.
    as_owner "$BINDIR/pg_ctl" -D "$DATA" -l "$PG_DIR/server.log" -w -t 60 start -o \
        "-h 127.0.0.1 -p $PG_PORT -k $SOCKETS -c fsync=off -c synchronous_commit=off \
-c full_page_writes=off -c max_connections=200" >/dev/null || {
        log "the server did not start; its log follows"
        tail -n 20 "$PG_DIR/server.log" >&2 || true
        exit 1
    }
fi

if ! as_owner "$BINDIR/psql" -h "$SOCKETS" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1; then
    as_owner "$BINDIR/createdb" -h "$SOCKETS" -p "$PG_PORT" -U "$PG_USER" "$PG_DB"
fi

echo "postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB"
