#!/usr/bin/env bash
# Back up codepref's PostgreSQL database: pg_dump's custom format (compressed, restorable table by table).
#
#   scripts/backup.sh [DATABASE_URL] [OUT_FILE]
#
# DATABASE_URL defaults to the environment's; OUT_FILE to backups/codepref-<UTC time>.dump. The dump is written
# to a temporary name and renamed when pg_dump succeeds, so a file with the final name is always whole. It holds
# the schema and every row (votes, accounts, tokens, snapshots' rows; not the snapshot files in MEDIA_ROOT:
# copy that folder beside it). Restore with scripts/restore.sh.
set -euo pipefail
url=${1:-${DATABASE_URL:?set DATABASE_URL or pass it}}
out=${2:-backups/codepref-$(date -u +%Y%m%dT%H%M%SZ).dump}
mkdir -p "$(dirname "$out")"
pg_dump --format=custom --no-owner --no-privileges --file="$out.partial" --dbname="$url"
mv "$out.partial" "$out"
echo "backup: $out ($(stat -c %s "$out") bytes)"
