#!/usr/bin/env bash
# A throw-away PostgreSQL server on 127.0.0.1 for the distributed-study tests and benchmark B6.
#
#   .ci/postgres.sh start DIR [PORT]   # initdb + start in DIR (created), create database skopt_nn_test; prints its URL
#   .ci/postgres.sh stop DIR           # stop the server and delete DIR
#
# Then: export SKOPT_NN_TEST_POSTGRES_URL="$(.ci/postgres.sh start /tmp/pg 55432)"; make test; .ci/postgres.sh stop /tmp/pg
# The server binaries come from the Debian package (installed here when missing and we are root); Debian keeps them
# off PATH in /usr/lib/postgresql/<version>/bin. As root, the server runs as the `postgres` user (initdb refuses root).
# Trust authentication, no fsync, listening on 127.0.0.1 only: for tests, never for data you want to keep.
set -euo pipefail

usage() {
    echo "usage: $0 start DIR [PORT] | stop DIR" >&2
    exit 2
}

bindir() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -z "$dir" ]] && command -v pg_ctl >/dev/null 2>&1; then
        dir="$(dirname "$(command -v pg_ctl)")"
    fi
    echo "$dir"
}

install_server() {
    if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        echo "$0: PostgreSQL is not installed and cannot be installed here (needs root and apt-get)" >&2
        return 1
    fi
    echo "$0: installing PostgreSQL from the Debian packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q postgresql >&2 || { apt-get update -q >&2 && apt-get install -y -q postgresql >&2; }
}

# run a server binary as the user that owns the cluster
as_owner() {
    if [[ "$(id -u)" -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

cmd="${1:-}"
dir="${2:-}"
[[ -n "$cmd" && -n "$dir" ]] || usage

case "$cmd" in
start)
    port="${3:-55432}"
    bin="$(bindir)"
    if [[ -z "$bin" ]]; then
        install_server
        bin="$(bindir)"
    fi
    [[ -x "$bin/initdb" ]] || { echo "$0: no initdb in '$bin'" >&2; exit 1; }
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    if [[ "$(id -u)" -eq 0 ]]; then
        chown postgres: "$dir"
    fi
    chmod 700 "$dir"
    as_owner "$bin/initdb" -A trust -U postgres -E UTF8 --no-sync -D "$dir/data" >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -h 127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200" start >&2 \
        || { cat "$dir/server.log" >&2; exit 1; }
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres skopt_nn_test
    echo "postgresql://postgres@127.0.0.1:$port/skopt_nn_test"
    ;;
stop)
    bin="$(bindir)"
    if [[ -d "$dir/data" && -n "$bin" ]]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
    fi
    rm -rf "$dir"
    ;;
*)
    usage
    ;;
esac
