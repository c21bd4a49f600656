#!/usr/bin/env bash
# The whole test suite. Installs and starts what the tests need where it can (Debian's chromium and
# bubblewrap, the machine's PostgreSQL and Redis); under CI=true a missing service is a failure, not a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"

bash scripts/services.sh

export PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/15}
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  export DATABASE_URL=${DATABASE_URL:-$PG_URL}
fi
export CODEPREF_VAR_DIR=${CODEPREF_VAR_DIR:-$PWD/var/test}
mkdir -p test-artifacts "$CODEPREF_VAR_DIR"

set +e
python -m pytest "$@"
rc=$?
set -e
# pytest exits 5 when it collected nothing: that is a failure here, never a pass.
exit $rc
