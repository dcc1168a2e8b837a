#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Start the services of docker-compose.yml in DIR as `docker compose up -d` (v2) would, with docker run:
# the project network <project>_default, containers <project>-<service>-1 with compose's labels, service
# names as network aliases, the same hostnames, users, bind mounts, environment and restart policy.
# The lab has no compose plugin (it comes from Docker's own repository), so this stands in for it.
#   compose_up.sh /srv/lemmy/lemmy.adopt.test
set -euo pipefail
dir="${1:?usage: compose_up.sh PROJECT_DIR}"
project="$(basename "$dir" | tr '[:upper:]' '[:lower:]' | tr -cd 'a-z0-9_-')"
network="${project}_default"
password="$(sed -n 's/^ *- POSTGRES_PASSWORD=//p' "$dir/docker-compose.yml")"

docker network inspect "$network" >/dev/null 2>&1 || docker network create \
  --label com.docker.compose.project="$project" --label com.docker.compose.network=default "$network" >/dev/null

run() {
  local service="$1"; shift
  local name="${project}-${service}-1"
  if docker container inspect "$name" >/dev/null 2>&1; then
    docker start "$name" >/dev/null
    return
  fi
  docker run --detach --name "$name" --restart always --network "$network" --network-alias "$service" \
    --log-driver json-file --log-opt max-size=50m --log-opt max-file=4 \
    --label com.docker.compose.project="$project" \
    --label com.docker.compose.service="$service" \
    --label com.docker.compose.container-number=1 \
    --label com.docker.compose.oneoff=False \
    --label com.docker.compose.project.working_dir="$dir" \
    --label com.docker.compose.project.config_files="$dir/docker-compose.yml" \
    "$@" >/dev/null
}

mkdir -p "$dir/volumes/pictrs" "$dir/volumes/postgres" "$dir/volumes/lemmy-ui/extra_themes"
chown 991:991 "$dir/volumes/pictrs"

# The password goes through a file, never the command line (docker run --env-file).
envfile="$(mktemp)"
trap 'rm -f "$envfile"' EXIT
chmod 600 "$envfile"
printf 'POSTGRES_USER=lemmy\nPOSTGRES_PASSWORD=%s\nPOSTGRES_DB=lemmy\n' "$password" > "$envfile"
run postgres --hostname postgres --shm-size 256m --env-file "$envfile" \
  -v "$dir/volumes/postgres:/var/lib/postgresql/data" -v "$dir/customPostgresql.conf:/etc/postgresql.conf" \
  fediscale-adopt/postgres:15 postgres -c config_file=/etc/postgresql.conf
printf 'PICTRS__SERVER__API_KEY=%s\nPICTRS__MEDIA__VIDEO__ENABLE=True\nRUST_LOG=info\n' "$password" > "$envfile"
run pictrs --hostname pictrs --user 991:991 --env-file "$envfile" -v "$dir/volumes/pictrs:/mnt" fediscale-standin/pictrs:0.5.16

# depends_on postgres: service_healthy
for _ in $(seq 120); do
  docker exec "${project}-postgres-1" psql --no-psqlrc --username=lemmy --dbname=lemmy --command='SELECT 1' >/dev/null 2>&1 && break
  sleep 0.5
done
docker exec "${project}-postgres-1" psql --no-psqlrc --username=lemmy --dbname=lemmy --command='SELECT 1' >/dev/null

run lemmy --hostname lemmy --env RUST_LOG=warn -v "$dir/lemmy.hjson:/config/config.hjson" fediscale-standin/lemmy:0.19.20
run lemmy-ui --env LEMMY_UI_LEMMY_INTERNAL_HOST=lemmy:8536 --env LEMMY_UI_LEMMY_EXTERNAL_HOST=lemmy.adopt.test \
  --env LEMMY_UI_HTTPS=true -v "$dir/volumes/lemmy-ui/extra_themes:/app/extra_themes" fediscale-standin/lemmy-ui:0.19.20
