#!/usr/bin/env bash
# Makes sure Debian's PostgreSQL binaries are in /usr/lib/postgresql/<version>/bin for the tests
# that start their own throwaway cluster (internal/pgtest: initdb + postgres on a unix socket in a
# temporary directory, as the "postgres" user the package creates). `make test` runs it before
# `go test`. It installs the package when it is missing, which needs root (CI and the dev
# machines run as root). Without root it only says what to run: those tests then fail under
# CI=true and skip elsewhere. The tests never use the system cluster the package may start.
set -euo pipefail

if compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
	exit 0
fi
if [ "$(id -u)" != "0" ]; then
	echo "ensure-postgres: no /usr/lib/postgresql/*/bin/initdb; install it with: sudo apt-get install -y postgresql" >&2
	exit 0
fi
echo "ensure-postgres: installing Debian's postgresql for the fleet tests" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq postgresql >/dev/null
ls -d /usr/lib/postgresql/*/bin >&2
