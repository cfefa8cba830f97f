#!/usr/bin/env bash
# Installs what is needed and runs the whole test suite: type check, lint, unit and integration tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/bootstrap.sh
source scripts/bootstrap.sh
ensure_test_tools
ensure_backup_tools
echo "node $(node --version), PostgreSQL tools in $TASKFLOW_PG_BINDIR" >&2
npm test
