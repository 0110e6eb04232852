#!/usr/bin/env bash
# Starts a throwaway Redis on a loopback port, the Celery broker and result backend of the
# local cluster (tests/cluster/), and prints its URL.
#
# Installs redis-server from Debian packages with apt-get when it is missing. Idempotent:
# when the server of the data directory is already running, it only prints the URL. It is
# never the system service: its own config, directory and port. Appends to an AOF so that a
# stop and start (the chaos case "broker down for 30 s") keeps the queued Celery tasks, as a
# real broker would. Runs the server as the `redis` user when started as root and that user
# exists. Settings (environment):
#   REMIX_PIPELINE_REDIS_DIR   data directory (default: .remix-pipeline/redis in the repo;
#                              as root, when `redis` cannot enter the repo, for instance a
#                              clone below a 0700 directory:
#                              /var/tmp/remix-pipeline-redis-<hash of the repo path>)
#   REMIX_PIPELINE_REDIS_PORT  loopback port (default: 56379)
# Usage: URL=$(bash scripts/redis.sh)          stop: bash scripts/redis.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd -P)"

log() { echo "redis.sh: $*" >&2; }

if ! command -v redis-server >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        log "redis-server is not installed and apt-get is not available; install Redis >= 6"
        exit 1
    fi
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    log "installing redis-server from Debian packages"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        redis-server >&2
fi

OWNER=""
if [ "$(id -u)" -eq 0 ] && id redis >/dev/null 2>&1; then
    OWNER="redis"
fi

# shellcheck source=scripts/owner.sh
. "$REPO/scripts/owner.sh"

if [ -n "${REMIX_PIPELINE_REDIS_DIR:-}" ]; then
    case "$REMIX_PIPELINE_REDIS_DIR" in
    /*) DIR="$REMIX_PIPELINE_REDIS_DIR" ;;
    *) DIR="$REPO/$REMIX_PIPELINE_REDIS_DIR" ;;
    esac
else
    DIR="$REPO/.remix-pipeline/redis"
    if [ -n "$OWNER" ] && ! owner_can_enter "$REPO"; then
        DIR="/var/tmp/remix-pipeline-redis-$(printf '%s' "$REPO" | sha256sum | cut -c1-16)"
    fi
fi
PORT_FILE="$DIR/port"
PID_FILE="$DIR/redis.pid"

running() {
    [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}

if [ "${1:-}" = "stop" ]; then
    if running; then
        pid="$(cat "$PID_FILE")"
        # SHUTDOWN writes the AOF before the server exits; wait for the exit.
        redis-cli -h 127.0.0.1 -p "$(cat "$PORT_FILE")" shutdown >/dev/null 2>&1 ||
            kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    exit 0
fi

mkdir -p "$DIR"
if [ -n "$OWNER" ]; then
    if [ -L "$DIR" ]; then
        log "$DIR is a symbolic link: remove it or set REMIX_PIPELINE_REDIS_DIR"
        exit 1
    fi
    chown "$OWNER" "$DIR"
    chmod 700 "$DIR"
    if ! owner_can_enter "$DIR"; then
        log "user $OWNER cannot enter $DIR: set REMIX_PIPELINE_REDIS_DIR to a directory it can reach"
        exit 1
    fi
fi

PORT="${REMIX_PIPELINE_REDIS_PORT:-56379}"
if running; then
    PORT="$(cat "$PORT_FILE")"
else
    port_busy() {
        python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', int(sys.argv[1]))) != 0)" "$1"
    }
    if [ -z "${REMIX_PIPELINE_REDIS_PORT:-}" ] && port_busy "$PORT"; then
        PORT="$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")"
    fi
    echo "$PORT" >"$PORT_FILE"
    as_owner redis-server --bind 127.0.0.1 --port "$PORT" --dir "$DIR" \
        --daemonize yes --pidfile "$PID_FILE" --logfile "$DIR/server.log" \
        --save "" --appendonly yes --appendfsync everysec --protected-mode yes
    for _ in $(seq 1 100); do
        if redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG; then
            break
        fi
        sleep 0.1
    done
    if ! redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG; then
        log "the server did not start; its log follows"
        tail -n 20 "$DIR/server.log" >&2 || true
        exit 1
    fi
fi

echo "redis://127.0.0.1:$PORT/0"
