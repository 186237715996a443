# Start a throwaway PostgreSQL from the machine's own server binaries, for the test suite.
# Sourced by .ci/run; exports PORTALCTL_TEST_DATABASE_URL and stops the server on exit.
# Usable by hand too:  source .ci/postgres.sh   (then run the tests; the server stops with the shell)

pg_bindir() {
  local d
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir; return
  fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  return 1
}

if ! PG_BIN=$(pg_bindir); then
  echo "ci: PostgreSQL server binaries not found; installing them" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  PG_BIN=$(pg_bindir)
fi
export PATH="$PG_BIN:$PATH"

PG_PORT=${PG_PORT:-54329}
PG_ROOT=$(mktemp -d /tmp/portalctl-ci-pg.XXXXXX)
mkdir -p "$PG_ROOT/data" "$PG_ROOT/sock"
as_pg=()
if [ "$(id -u)" = 0 ]; then
  chown -R postgres:postgres "$PG_ROOT"
  as_pg=(runuser -u postgres --)
fi
"${as_pg[@]}" "$PG_BIN/initdb" -D "$PG_ROOT/data" -A trust -U postgres --no-sync -E UTF8 --locale=C.UTF-8 >"$PG_ROOT/initdb.log" 2>&1 \
  || { cat "$PG_ROOT/initdb.log" >&2; exit 1; }
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$PG_ROOT/data" -l "$PG_ROOT/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_ROOT/sock -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" start >/dev/null \
  || { cat "$PG_ROOT/server.log" >&2; exit 1; }

stop_postgres() {
  "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$PG_ROOT/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PG_ROOT"
}
trap stop_postgres EXIT

export PORTALCTL_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
echo "ci: PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT" >&2
