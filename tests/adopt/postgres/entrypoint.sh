#!/bin/sh
# First start: create the cluster, the superuser POSTGRES_USER and the database POSTGRES_DB, as the official image does.
set -eu
bin=/usr/lib/postgresql/15/bin
data="${PGDATA:-/var/lib/postgresql/data}"
mkdir -p "$data" /var/run/postgresql
chown postgres:postgres "$data" /var/run/postgresql
chmod 700 "$data"
if [ ! -s "$data/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is not set}" > "$pwfile"
  chown postgres "$pwfile"
  runuser -u postgres -- "$bin/initdb" --pgdata="$data" --username="${POSTGRES_USER:-postgres}" --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$data/pg_hba.conf"
  runuser -u postgres -- "$bin/pg_ctl" --pgdata="$data" --options="-c listen_addresses=''" --wait start >/dev/null
  db="${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"
  if [ "$db" != postgres ]; then
    runuser -u postgres -- psql --no-psqlrc --username="${POSTGRES_USER:-postgres}" --dbname=postgres \
      --set=ON_ERROR_STOP=1 --command="CREATE DATABASE \"$db\"" >/dev/null
  fi
  runuser -u postgres -- "$bin/pg_ctl" --pgdata="$data" --mode=fast --wait stop >/dev/null
fi
if [ "$1" = postgres ]; then
  shift
  exec runuser -u postgres -- "$bin/postgres" -D "$data" "$@"
fi
exec "$@"
