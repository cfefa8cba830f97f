#!/usr/bin/env bash
# Installs what is needed and starts TaskFlow with a managed local PostgreSQL and a demo tenant.
# Extra arguments go to `taskflow start` (see: taskflow start --help).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/bootstrap.sh
source scripts/bootstrap.sh
exec node bin/taskflow.js start --demo "$@"
