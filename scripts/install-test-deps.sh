#!/usr/bin/env bash
# Installs the Debian packages the test suite uses (real servers and tools, no mocks), on
# Debian (12 is what CI runs) or Ubuntu: the names are the same on both but Chromium's.
# Does nothing when they are all installed; otherwise says which are missing and installs
# them as root, or through sudo when not root (a bare root machine has no sudo).
set -euo pipefail
# Debian's Chromium is the package chromium; Ubuntu's is chromium-browser, which installs
# the Chromium snap (it needs snapd). A Chromium already on PATH, or one named by
# SNAPDB_TEST_CHROMIUM, is used as it is (test/helpers/tool-paths.ts).
# shellcheck source=/dev/null
os_id=$(. "${SNAPDB_OS_RELEASE:-/etc/os-release}" 2>/dev/null && echo "${ID:-}") || os_id=
if [ -n "${SNAPDB_TEST_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  chromium=()
elif [ "$os_id" = ubuntu ]; then
  chromium=(chromium-browser)
else
  chromium=(chromium)
fi
PACKAGES=(
  ca-certificates
  postgresql        # the distribution's PostgreSQL server (test/helpers/tool-paths.ts finds its initdb/postgres)
  postgresql-client # pg_dump/psql: data source verify checks pg_dump's version
  mariadb-server    # mariadb-install-db + mariadbd (test/helpers/mariadb.ts)
  mariadb-client    # mariadb, mariadb-admin, mariadb-dump/mysqldump
  util-linux        # runuser: initdb and postgres refuse to run as root
  bsdutils          # script: test/e2e/cli-client.test.ts runs `backup --wait` in a pseudo-terminal
  "${chromium[@]}"  # test/e2e/swagger-ui.test.ts and dashboard.test.ts drive the UIs headless
  shellcheck    # test/e2e/install.test.ts lints install.sh
  systemd       # systemd-analyze verify/security on systemd/snapdb.service
  zstd          # tests read backups with the standard zstd tool (restore by hand)
  age           # tests decrypt backups with the age tool, and age decrypts ours
  jq            # the README journey (test/e2e/readme-journey.test.ts) uses jq
  curl          # … and curl
  prometheus    # promtool: contrib/prometheus/snapdb-alerts.yml is checked and unit-tested with it
  python3-aiosmtpd  # a real SMTP server (with AUTH) that e-mail notifications are sent to
  zsh           # the CLI's zsh completion script is parsed with zsh -n
  fish          # … and its fish one with fish -n
  faketime      # test/reliability/fleet-three.test.ts runs one fleet node with its clock 10 s off (libfaketime)
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "missing Debian packages: ${missing[*]}; install them as root (no sudo here): apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "installing the Debian packages the tests need: ${missing[*]}" >&2
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "installed: ${missing[*]}" >&2
fi
