# Sourced by the scripts that run a server as its own user (postgres.sh, redis.sh): set OWNER
# to that user (empty: the calling user) before sourcing.

# Runs a command as OWNER. From / because runuser and su keep the working directory, which
# OWNER may not be allowed to enter (a clone below a 0700 directory); every path given to
# it is absolute.
as_owner() {
    if [ -z "${OWNER:-}" ]; then
        "$@"
    elif command -v runuser >/dev/null 2>&1; then
        (cd / && exec runuser -u "$OWNER" -- "$@")
    else
        (cd / && exec su "$OWNER" -s /bin/sh -c "$(printf '%q ' "$@")")
    fi
}

# Whether OWNER can enter DIR, or else its nearest existing ancestor.
owner_can_enter() {
    local dir="$1"
    while [ ! -e "$dir" ]; do
        dir="$(dirname "$dir")"
    done
    as_owner test -x "$dir"
}
