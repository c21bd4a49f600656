#!/usr/bin/env bash
# Restore a dump made by scripts/backup.sh into a NEW, empty database (it refuses one that holds tables).
#
#   scripts/restore.sh DUMP_FILE TARGET_DATABASE_URL
#
# The target database is created if it does not exist (the URL's server must let this user create one). Then
# point DATABASE_URL at it and run `python manage.py migrate` (a no-op for a dump of the same release; it
# applies newer migrations to an older dump).
set -euo pipefail
dump=${1:?usage: scripts/restore.sh DUMP_FILE TARGET_DATABASE_URL}
url=${2:?usage: scripts/restore.sh DUMP_FILE TARGET_DATABASE_URL}
name=${url##*/}
name=${name%%\?*}
server=${url%/*}
if ! psql --dbname="$server/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1; then
  createdb --maintenance-db="$server/postgres" "$name"
fi
tables=$(psql --dbname="$url" -tAc "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
if [ "$tables" != "0" ]; then
  echo "restore: $name already holds $tables tables; restore into a new database" >&2
  exit 1
fi
pg_restore --no-owner --no-privileges --exit-on-error --single-transaction --dbname="$url" "$dump"
echo "restore: $dump -> $name ($(psql --dbname="$url" -tAc 'SELECT count(*) FROM feedback_vote') votes)"
