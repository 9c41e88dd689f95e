#!/usr/bin/env bash
# npm run test:tls: integration tests against hardened transports.
#
# Starts, on free loopback ports and from a temp dir (removed on exit):
# - a PostgreSQL 15 cluster of its own with ssl = on, password_encryption = scram-sha-256 and the
#   shipped ops/postgres/pg_hba.conf (hostssl + scram-sha-256 only; plain TCP is rejected);
# - a redis-server with TLS only (port 0, tls-port) and requirepass;
# with a CA and a server certificate (SAN IP:127.0.0.1) made here with openssl. Then runs vitest
# with TEST_DATABASE_ADMIN_URL (?sslmode=verify-full, the owner with a password) and
# TEST_REDIS_URL (rediss://:password@…) pointing at them. The CA is trusted through
# NODE_EXTRA_CA_CERTS (every Node process of the run: vitest, its workers, the `accunode`
# processes tests start) and REDIS_TLS_CA_FILE (the app's Redis factory).
#
# Default: a representative subset (identity, predictions, jobs, health); `npm run test:tls -- all`
# runs the whole suite but two files (see below); other arguments go to vitest instead.
# The shared PostgreSQL 5432 / Redis 6379 are not touched.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{process.stdout.write(String(s.address().port));s.close()})'; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

DIR=$(mktemp -d /tmp/accunode-tls-XXXXXX)
chmod 755 "$DIR"
PG_PORT=$(free_port)
REDIS_PORT=$(free_port)
PG_PW=tls-suite-owner-$RANDOM$RANDOM
REDIS_PW=tls-suite-redis-$RANDOM$RANDOM

cleanup() {
  as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg" -m immediate -w stop >/dev/null 2>&1 || true
  if [ -f "$DIR/redis.pid" ]; then kill "$(cat "$DIR/redis.pid")" 2>/dev/null || true; fi
  sleep 0.3
  rm -rf "$DIR"
}
trap cleanup EXIT

# Certificates: a CA, and a server certificate it signs for 127.0.0.1.
(
  cd "$DIR"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=AccuNode test CA' -keyout ca.key -out ca.crt 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj '/CN=127.0.0.1' -keyout server.key -out server.csr 2>/dev/null
  printf 'subjectAltName = IP:127.0.0.1, DNS:localhost\nextendedKeyUsage = serverAuth\n' >san.ext
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.crt 2>/dev/null
  chmod 644 ca.crt server.crt server.key
)

# PostgreSQL: initdb, the shipped pg_hba.conf, SSL on; the owner's password set over the socket
# (peer, the only non-TLS way in the shipped file allows).
mkdir -p "$DIR/pg" "$DIR/sock"
touch "$DIR/pg.log"
if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$DIR/pg" "$DIR/sock" "$DIR/pg.log"; fi
as_pg "$PG_BIN/initdb" -D "$DIR/pg" -A trust -U postgres --no-sync --no-instructions >/dev/null
cp ops/postgres/pg_hba.conf "$DIR/pg/pg_hba.conf"
install -m 600 "$DIR/server.crt" "$DIR/pg/server.crt"
install -m 600 "$DIR/server.key" "$DIR/pg/server.key"
if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$DIR/pg/pg_hba.conf" "$DIR/pg/server.crt" "$DIR/pg/server.key"; fi
cat >>"$DIR/pg/postgresql.conf" <<CONF
ssl = on
password_encryption = 'scram-sha-256'
fsync = off
max_connections = 300
log_connections = on
CONF
as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg" -l "$DIR/pg.log" -w -t 60 -o "-p $PG_PORT -k $DIR/sock -c listen_addresses=127.0.0.1" start >/dev/null
as_pg "$PG_BIN/psql" -h "$DIR/sock" -p "$PG_PORT" -U postgres -d postgres -qAt -c "ALTER ROLE postgres PASSWORD '$PG_PW'"

# Redis: TLS only, AUTH required, the queue profile's persistence and eviction settings.
redis-server --port 0 --tls-port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DIR" \
  --tls-cert-file "$DIR/server.crt" --tls-key-file "$DIR/server.key" --tls-ca-cert-file "$DIR/ca.crt" \
  --tls-auth-clients no --requirepass "$REDIS_PW" \
  --appendonly yes --appendfsync everysec --save '' --maxmemory-policy noeviction \
  --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log"
for _ in $(seq 1 50); do
  if node -e 'const s=require("net").connect(+process.argv[1],"127.0.0.1");s.on("connect",()=>process.exit(0));s.on("error",()=>process.exit(1))' "$REDIS_PORT"; then break; fi
  sleep 0.1
done

export NODE_EXTRA_CA_CERTS="$DIR/ca.crt"
export REDIS_TLS_CA_FILE="$DIR/ca.crt"
# libpq tools the app runs (pg_dump, pg_restore, psql) read the CA from here, not from Node.
export PGSSLROOTCERT="$DIR/ca.crt"
export TEST_DATABASE_ADMIN_URL="postgres://postgres:$PG_PW@127.0.0.1:$PG_PORT/postgres?sslmode=verify-full"
export TEST_REDIS_URL="rediss://:$REDIS_PW@127.0.0.1:$REDIS_PORT"
echo "PostgreSQL 15 on 127.0.0.1:$PG_PORT (ssl, scram-sha-256, shipped pg_hba.conf); Redis TLS+AUTH on 127.0.0.1:$REDIS_PORT"

# Nothing reaches these servers unencrypted or without a password.
node --input-type=module -e '
import postgres from "postgres";
const url = process.env.TEST_DATABASE_ADMIN_URL.replace("sslmode=verify-full", "sslmode=disable");
const s = postgres(url, { max: 1, connect_timeout: 5, onnotice: () => {} });
try { await s`select 1`; console.error("plain TCP to PostgreSQL was accepted"); process.exit(1); }
catch (e) { if (!/no encryption/.test(e.message)) { console.error(e.message); process.exit(1); } }
finally { await s.end({ timeout: 1 }).catch(() => {}); }
'

if [ $# -eq 0 ]; then
  set -- test/identity test/predictions test/jobs test/foundation/health.test.ts
elif [ "$1" = all ]; then
  # Everything except the two files that change the cluster-wide role passwords while other files
  # run (roles.test.ts; up.test.ts runs `accunode up`, which applies generated ones): on the
  # shared trust-authenticated server that is invisible, under scram-sha-256 every concurrent
  # file's app_user login fails.
  shift
  set -- test/ --exclude test/foundation/roles.test.ts --exclude test/foundation/up.test.ts "$@"
fi
set +e
npx vitest run "$@"
rc=$?
set -e
echo "PostgreSQL connections: $(grep -c 'connection authorized.*SSL enabled' "$DIR/pg.log" || true) authorized with SSL, $(grep 'connection authorized' "$DIR/pg.log" | grep -vc 'SSL enabled' || true) without"
exit $rc
