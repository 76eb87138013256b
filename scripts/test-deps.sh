#!/usr/bin/env bash
# What the test suite needs besides the .NET SDK, in one place (./build.sh test and .ci/run call this):
#   - PostgreSQL server binaries (initdb, postgres): the tests start their own throwaway server, unless
#     KEEL_TEST_POSTGRES names one;
#   - Chromium at /usr/bin/chromium: the dashboard's browser tests (Playwright drives it; it downloads no browser);
#   - PgBouncer at /usr/sbin/pgbouncer: the fault-injection tests put it between Keel and PostgreSQL;
#   - MariaDB server binaries (mariadbd, mariadb-install-db): the MySQL engine's tests start their own throwaway
#     server, unless KEEL_TEST_MYSQL names one (the package also creates the 'mysql' user mariadbd runs as);
#   - as root, a 'postgres' user: PostgreSQL refuses to run as root, so the tests run it as that user.
# As root on Debian it installs whatever is missing; otherwise it stops at once with one line naming what to install.
set -euo pipefail

packages=()
if [ -z "${KEEL_TEST_POSTGRES:-}" ] && ! command -v initdb >/dev/null 2>&1 \
    && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  packages+=(postgresql)
fi
[ -x /usr/bin/chromium ] || packages+=(chromium)
[ -x /usr/sbin/pgbouncer ] || packages+=(pgbouncer)
if [ -z "${KEEL_TEST_MYSQL:-}" ] && [ ! -x /usr/sbin/mariadbd ] && ! command -v mariadbd >/dev/null 2>&1; then
  packages+=(mariadb-server)
fi

user_missing=false
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
  user_missing=true
fi

if [ ${#packages[@]} -eq 0 ] && [ "$user_missing" = false ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "keel tests: missing ${packages[*]}: install with 'sudo apt-get install -y ${packages[*]}' (or run 'sudo scripts/test-deps.sh')" >&2
  exit 1
fi

if [ ${#packages[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "keel tests: missing ${packages[*]}, and there is no apt-get to install them with: install them by hand" >&2
    exit 1
  fi
  echo "keel tests: installing ${packages[*]} (apt-get)…"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${packages[@]}" >/dev/null
fi

# The postgresql package creates this user; a machine with binaries from elsewhere may lack it.
id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
