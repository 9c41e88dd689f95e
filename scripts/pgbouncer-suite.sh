#!/usr/bin/env bash
# npm run test:pgbouncer: the integration suite with every application connection (app_user,
# readonly_user, …) going through PgBouncer in transaction pool mode, which proves the app only
# relies on transaction-local settings (set_config(..., true)) and no named prepared statements.
# The owner connection (CREATE DATABASE from the template, fixtures, assertions) stays direct.
#
# PgBouncer (Debian package pgbouncer) runs as the postgres user from a config in a temp dir,
# on a free loopback port, in front of TEST_DATABASE_ADMIN_URL's server (default 127.0.0.1:5432);
# a wildcard [databases] entry lets it reach each test file's database. Stopped on exit.
# Extra arguments go to vitest (e.g. a test file).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
  echo "pgbouncer is not installed: apt-get install -y pgbouncer" >&2
  exit 2
fi
PGBOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)

ADMIN_URL=${TEST_DATABASE_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PG_HOST=$(node -e 'const u=new URL(process.argv[1]);process.stdout.write(u.hostname||"127.0.0.1")' "$ADMIN_URL")
PG_PORT=$(node -e 'const u=new URL(process.argv[1]);process.stdout.write(u.port||"5432")' "$ADMIN_URL")
PORT=${PGBOUNCER_PORT:-$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{process.stdout.write(String(s.address().port));s.close()})')}
POOL_SIZE=${PGBOUNCER_POOL_SIZE:-20}

DIR=$(mktemp -d /tmp/accunode-pgbouncer-XXXXXX)
chmod 755 "$DIR"
cat >"$DIR/pgbouncer.ini" <<INI
[databases]
* = host=$PG_HOST port=$PG_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PORT
unix_socket_dir = $DIR
auth_type = scram-sha-256
auth_file = $DIR/userlist.txt
pool_mode = transaction
max_client_conn = 2000
default_pool_size = $POOL_SIZE
max_db_connections = 0
server_reset_query =
ignore_startup_parameters = extra_float_digits
logfile = $DIR/pgbouncer.log
pidfile = $DIR/pgbouncer.pid
INI
# The application roles with the password the test template gives them (plain text here, so
# PgBouncer can run SCRAM with the client and log in to the server with it).
ROLE_PW=${TEST_ROLE_PASSWORD:-accunode-test-password}
: >"$DIR/userlist.txt"
for role in app_user readonly_user analytics_user monitoring_user maintenance_user; do
  printf '"%s" "%s"\n' "$role" "$ROLE_PW" >>"$DIR/userlist.txt"
done
chmod 600 "$DIR/userlist.txt"
if [ "$(id -u)" = 0 ]; then
  chown -R postgres:postgres "$DIR"
  runuser -u postgres -- "$PGBOUNCER" -d "$DIR/pgbouncer.ini"
else
  "$PGBOUNCER" -d "$DIR/pgbouncer.ini"
fi

cleanup() {
  if [ -f "$DIR/pgbouncer.pid" ]; then kill "$(cat "$DIR/pgbouncer.pid")" 2>/dev/null || true; fi
  sleep 0.3
  rm -rf "$DIR"
}
trap cleanup EXIT

for _ in $(seq 1 50); do
  if node -e 'const s=require("net").connect(+process.argv[1],"127.0.0.1");s.on("connect",()=>process.exit(0));s.on("error",()=>process.exit(1))' "$PORT"; then break; fi
  sleep 0.1
done
if [ ! -f "$DIR/pgbouncer.pid" ]; then
  echo "pgbouncer did not start:" >&2
  cat "$DIR/pgbouncer.log" >&2 || true
  exit 1
fi
echo "PgBouncer $("$PGBOUNCER" --version | head -1 | awk '{print $2}') on 127.0.0.1:$PORT (transaction mode, pool $POOL_SIZE) -> $PG_HOST:$PG_PORT"

export TEST_APP_PG_PROXY="127.0.0.1:$PORT"
# LISTEN/NOTIFY (session revocations) cannot work through transaction pooling: with the proxy set,
# test/helpers/app.ts gives the revocation listener a direct app_user connection (listenUrlFor),
# as DATABASE_LISTEN_URL does for `accunode api` in a deployment behind PgBouncer.
# Child processes the tests start (accunode worker/api) inherit it: no named prepared statements.
export DATABASE_PREPARE=false
set +e
npx vitest run "$@"
rc=$?
set -e
echo "PgBouncer: $(grep -c 'login attempt' "$DIR/pgbouncer.log" 2>/dev/null || echo 0) client logins through it"
exit $rc
