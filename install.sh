#!/usr/bin/env bash
# Installs snapdb as a systemd service:
#   binary  /usr/local/bin/snapdb
#   config  /etc/snapdb/snapdb.toml       (written only if absent; 0640 root:snapdb)
#   data    /var/lib/snapdb               (0700 snapdb:snapdb: store, master key, JWT secret)
#   unit    /etc/systemd/system/snapdb.service
# and a `snapdb` system user. Running it again upgrades the binary and the unit and keeps
# the config and the data. See --help.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: sudo ./install.sh [--binary PATH|URL [--sha256 HEX]] [--no-user]
       sudo ./install.sh --uninstall [--purge]
       ./install.sh --prefix DIR ...        (staged install into DIR, no root needed)

  --binary PATH   the snapdb executable to install (default: dist/snapdb next to this script)
  --binary URL    download it first (https:// or file://); then --sha256 is required
  --sha256 HEX    expected SHA-256 of the downloaded binary
  --no-user       do not create the snapdb user/group (they must exist, e.g. from LDAP)
  --prefix DIR    install under DIR instead of / (also: DESTDIR=DIR). Implies --no-user:
                  nothing outside DIR is touched, no user is created, systemctl is not run
  --uninstall     stop and remove the unit and the binary; keep config and data
  --purge         with --uninstall: also remove /etc/snapdb, /var/lib/snapdb (every backup
                  kept in the data dir, the store and its master key) and the snapdb user
EOF
}

die() {
  echo "install.sh: $*" >&2
  exit 1
}

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
binary="$script_dir/dist/snapdb"
sha256=""
prefix="${DESTDIR:-}"
no_user=0
mode=install
purge=0

while [ $# -gt 0 ]; do
  case "$1" in
    --binary) [ $# -ge 2 ] || die "--binary needs a path or URL"; binary=$2; shift 2 ;;
    --binary=*) binary=${1#*=}; shift ;;
    --sha256) [ $# -ge 2 ] || die "--sha256 needs a value"; sha256=$2; shift 2 ;;
    --sha256=*) sha256=${1#*=}; shift ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    --no-user) no_user=1; shift ;;
    --uninstall) mode=uninstall; shift ;;
    --purge) purge=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[ "$purge" = 0 ] || [ "$mode" = uninstall ] || die "--purge only goes with --uninstall"

if [ -n "$prefix" ]; then
  mkdir -p "$prefix"
  prefix=$(cd "$prefix" && pwd)
  [ "$prefix" != / ] || prefix=""
fi
if [ -n "$prefix" ]; then
  no_user=1 # a staged root is not the live system: never create real users for it
elif [ "$(id -u)" -ne 0 ]; then
  die "must run as root to install system-wide (try: sudo $0 $*), or pass --prefix DIR for a staged install"
fi

BIN="$prefix/usr/local/bin/snapdb"
CONF_DIR="$prefix/etc/snapdb"
CONF="$CONF_DIR/snapdb.toml"
DATA="$prefix/var/lib/snapdb"
UNIT_DIR="$prefix/etc/systemd/system"
UNIT="$UNIT_DIR/snapdb.service"

# systemctl only on the live system, and only when systemd is what runs it.
systemd_live() { [ -z "$prefix" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

# Ownership: snapdb's own when we manage or find the user, else whoever runs a staged install.
owner_of() { # $1 = "root" or "snapdb" → owner:group for chown, or "" to leave as is
  if [ -n "$prefix" ] || ! getent group snapdb >/dev/null; then echo ""; return; fi
  if [ "$1" = root ]; then echo "root:snapdb"; else echo "snapdb:snapdb"; fi
}

ensure_user() {
  if [ "$no_user" = 1 ]; then
    [ -n "$prefix" ] || getent passwd snapdb >/dev/null || die "--no-user: the snapdb user must exist already"
    return
  fi
  getent group snapdb >/dev/null || groupadd --system snapdb
  if ! getent passwd snapdb >/dev/null; then
    useradd --system --gid snapdb --home-dir /var/lib/snapdb --no-create-home \
      --shell /usr/sbin/nologin --comment "snapdb backup daemon" snapdb
  fi
}

# Resolves --binary to a local file; a URL is downloaded and must match --sha256.
fetch_binary() {
  case "$binary" in
    https://* | file://*)
      [ -n "$sha256" ] || die "--binary URL needs --sha256 HEX: an unchecked download is not installed"
      command -v curl >/dev/null || die "curl is needed to download $binary"
      tmp_download=$(mktemp)
      trap 'rm -f "$tmp_download"' EXIT
      curl -fsSL --proto '=https,file' -o "$tmp_download" "$binary" || die "download of $binary failed"
      got=$(sha256sum "$tmp_download" | cut -d' ' -f1)
      [ "$got" = "$(echo "$sha256" | tr 'A-F' 'a-f')" ] || die "checksum mismatch for $binary: expected $sha256, got $got"
      chmod 0755 "$tmp_download"
      binary=$tmp_download
      ;;
    *://*) die "--binary URL must be https:// (or file://)" ;;
  esac
  [ -f "$binary" ] || die "no snapdb binary at $binary (build it with 'npm run build', or pass --binary PATH)"
  [ -x "$binary" ] || die "$binary is not executable"
  "$binary" version >/dev/null 2>&1 || die "$binary does not run here ('$binary version' failed: wrong architecture?)"
}

write_config() {
  install -d -m 0750 "$CONF_DIR"
  [ -z "$(owner_of root)" ] || chown "$(owner_of root)" "$CONF_DIR"
  if [ -e "$CONF" ]; then
    echo "kept     $CONF (already there)"
    return
  fi
  local tmp="$CONF.tmp.$$"
  (umask 077 && cat >"$tmp") <<'EOF'
# snapdb configuration. Precedence: this file < SNAPDB_* environment < command-line flags.
# `snapdb serve --print-config` shows the effective configuration (secrets masked);
# `snapdb doctor` checks it. Restart after a change: systemctl restart snapdb
#
# Every key below the first two shows its default, commented out.

dataDir = "/var/lib/snapdb"       # store, master key, JWT secret, managed local backups
listen = "127.0.0.1:8484"         # HOST:PORT of the API; keep it on loopback behind a proxy

# masterKeyFile = "/var/lib/snapdb/master.key"   # encrypts stored credentials: BACK IT UP

# [log]
# level = "info"                  # debug | info | warn | error

# [auth]
# audience = "snapdb"             # the JWT aud claim required
# issuer = ""                     # the JWT iss claim required, if set
# orgClaim = "org_id"             # the claim that names the organisation
# jwtSecret = ""                  # HS256 secret (>= 32 chars); prefer the generated file below
# jwtSecretFile = "/var/lib/snapdb/jwt-secret"   # generated at first start (0600)
# publicKeyFile = ""              # verify RS256/ES256 tokens with this PEM public key instead
# jwksUrl = ""                    # or with the keys of this JWKS URL (not both)
# maxTokenLifetimeSeconds = 2592000   # tokens valid longer than this (exp - iat) are refused

# [http]
# bodyLimitBytes = 1048576        # larger request bodies get 413
# metricsPublic = true            # false: /metrics needs a token
# publicUrl = ""                  # how clients reach snapdb, e.g. "https://backup.example.com"
#                                 # (download links of local destinations); default http://{listen}
# idleTimeoutSeconds = 30         # 1–255: a silent connection is closed (a verify is exempt)

# [managedStorage]                # the destination snapdb manages itself
# type = "local"
# path = "/var/lib/snapdb/managed"
# or, in S3 (AWS or any S3-compatible endpoint):
# type = "s3"
# endpoint = ""                   # empty for AWS; e.g. "https://minio.internal:9000"
# region = "eu-west-1"
# bucket = "my-backups"
# prefix = "snapdb"
# forcePathStyle = false          # true for MinIO and most non-AWS endpoints
# accessKeyId = ""                # empty: the AWS default credential chain
# secretAccessKey = ""

# [storage]
# allowedLocalRoots = []          # absolute dirs local destinations may use, e.g. ["/srv/backups"]
#                                 # (also add them to ReadWritePaths: systemctl edit snapdb)
# stsEndpoint = ""                # the only STS that sees the daemon's own AWS identity (empty: AWS STS)
# allowedRoleArns = []            # globs a tenant's assumeRole roleArn must match; empty: any
# allowedRestoreRoots = []        # absolute dirs point-in-time restores may build PostgreSQL data dirs in,
#                                 # e.g. ["/srv/pg-restores"] (and in ReadWritePaths); empty: none

# [sources]
# allowedSqliteRoots = []         # absolute dirs SQLite data sources may live in; empty: no SQLite sources

# [network]                       # tenant-given hosts (databases, S3 endpoints, webhooks), checked after DNS
# denyCidrs = ["169.254.0.0/16", "fd00:ec2::254/128"]   # never connect there (cloud metadata)
# allowCidrs = []                 # if set, connect only there

# [runner]
# maxConcurrent = 2               # jobs running at once
# retryBaseSeconds = 30           # first retry delay of a failed job (then backs off)
# shutdownGraceSeconds = 60       # on stop, how long running jobs get to checkpoint
#                                 # (keep it below the unit's TimeoutStopSec=120)
# maxConcurrentPerOrg = 1         # jobs of one organisation at once; orgs take turns
# maxTimeoutSeconds = 86400       # ceiling for a policy's timeoutSeconds
# restoreTimeoutSeconds = 86400   # a restore running longer is stopped (TIMEOUT)
# partsConcurrency = 1            # databases of one whole-server backup dumped at once
# leaseSeconds = 30               # fleet: a running job's claim, renewed while it runs; also
#                                 # how fast another node takes over a dead leader's scheduler

# [store]
# url = ""                        # empty: the embedded SQLite file in dataDir; "postgres://…":
#                                 # a PostgreSQL store shared by several daemons (a fleet)

# [node]
# labels = { }                    # this node's labels, e.g. { site = "paris" }; a data source's
#                                 # runOn.labels pins its jobs to nodes that carry them

# [scheduler]
# catchUp = "one"                 # after downtime: "one" missed run, or "none"

# [notify]
# staleCheckSeconds = 60          # how often sources are checked for backups that stopped
# retryBaseSeconds = 10           # first retry of a failed delivery (then doubling, for 24 h)

# [notify.smtp]                   # the mail relay of "email" notification channels
# host = ""                       # empty: e-mail channels are refused
# port = 587
# secure = false                  # true: TLS from the first byte (port 465); false: STARTTLS if offered
# requireTLS = false              # true: STARTTLS is required; no mail (and no password) over plain text
# username = ""
# password = ""                   # or SNAPDB_SMTP_PASSWORD in the unit's environment
# from = ""                       # default sender, e.g. "snapdb <backups@example.com>"
EOF
  chmod 0640 "$tmp"
  [ -z "$(owner_of root)" ] || chown "$(owner_of root)" "$tmp"
  mv -f "$tmp" "$CONF"
  echo "wrote    $CONF"
}

do_install() {
  fetch_binary
  ensure_user
  install -d -m 0755 "$(dirname "$BIN")" "$UNIT_DIR"
  # Copy then rename: replacing a running binary in place fails (ETXTBSY) or corrupts it.
  install -m 0755 "$binary" "$BIN.new.$$"
  mv -f "$BIN.new.$$" "$BIN"
  echo "binary   $BIN ($("$BIN" version))"
  write_config
  install -d -m 0700 "$DATA"
  chmod 0700 "$DATA"
  [ -z "$(owner_of snapdb)" ] || chown "$(owner_of snapdb)" "$DATA"
  echo "data     $DATA (0700)"
  install -m 0644 "$script_dir/systemd/snapdb.service" "$UNIT"
  echo "unit     $UNIT"
  if systemd_live; then
    systemctl daemon-reload
    if systemctl is-active --quiet snapdb.service; then
      echo "note     snapdb is running the old binary: systemctl restart snapdb"
    fi
  fi
  cat <<'EOF'

Next steps:
  sudo systemctl enable --now snapdb        # start now and at boot
  sudo -u snapdb snapdb doctor --config /etc/snapdb/snapdb.toml
  TOKEN=$(sudo -u snapdb snapdb token --config /etc/snapdb/snapdb.toml --org acme --sub admin)
  curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8484/audit-log
  # API docs: http://127.0.0.1:8484/swagger/
  # Back up /var/lib/snapdb/master.key somewhere safe: stored credentials need it.
EOF
}

do_uninstall() {
  if systemd_live && [ -e "$UNIT" ]; then
    systemctl disable --now snapdb.service || true
  fi
  rm -f "$UNIT" "$BIN"
  echo "removed  $UNIT $BIN"
  if systemd_live; then systemctl daemon-reload; fi
  if [ "$purge" = 1 ]; then
    rm -rf "$CONF_DIR" "$DATA"
    echo "purged   $CONF_DIR $DATA"
    if [ "$no_user" = 0 ] && getent passwd snapdb >/dev/null; then
      userdel snapdb
      echo "removed  user snapdb"
    fi
    if [ "$no_user" = 0 ] && getent group snapdb >/dev/null; then groupdel snapdb || true; fi
  else
    echo "kept     $CONF_DIR $DATA (remove them with --uninstall --purge)"
  fi
}

if [ "$mode" = install ]; then do_install; else do_uninstall; fi
