#!/usr/bin/env bash
# Makes everything TaskFlow needs available, or says exactly what is missing and how to get it.
# Sourced by scripts/start.sh and scripts/test.sh; safe to run again (it only does what is missing).
# After it, PATH starts with Node.js 24 and TASKFLOW_PG_BINDIR names the PostgreSQL tools.
set -euo pipefail

TASKFLOW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_MAJOR_WANTED=24
TOOLS_DIR="$TASKFLOW_ROOT/.tools"

say() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

ensure_node() {
  if command -v node >/dev/null 2>&1 && [ "$(node_major node)" -ge "$NODE_MAJOR_WANTED" ]; then
    return
  fi
  local local_node="$TOOLS_DIR/node/node_modules/node/bin/node"
  if [ ! -x "$local_node" ] || [ "$(node_major "$local_node")" -lt "$NODE_MAJOR_WANTED" ]; then
    command -v npm >/dev/null 2>&1 || die "Node.js ${NODE_MAJOR_WANTED} is needed and npm is not installed to fetch it. Install Node.js ${NODE_MAJOR_WANTED} LTS (https://nodejs.org) or npm, then run again."
    say "installing Node.js ${NODE_MAJOR_WANTED} from the npm package node@${NODE_MAJOR_WANTED} into .tools/node"
    mkdir -p "$TOOLS_DIR/node"
    # Its own package.json, so npm installs here and not into the project above it.
    [ -f "$TOOLS_DIR/node/package.json" ] || echo '{"private":true,"description":"Node.js 24 for TaskFlow"}' >"$TOOLS_DIR/node/package.json"
    (cd "$TOOLS_DIR/node" && npm install --no-audit --no-fund --no-save --loglevel=error "node@${NODE_MAJOR_WANTED}" >/dev/null) \
      || die "could not install node@${NODE_MAJOR_WANTED} from the npm registry; install Node.js ${NODE_MAJOR_WANTED} by hand and run again."
  fi
  export PATH="$TOOLS_DIR/node/node_modules/node/bin:$PATH"
  [ "$(node_major node)" -ge "$NODE_MAJOR_WANTED" ] || die "Node.js ${NODE_MAJOR_WANTED} still not on PATH after install"
}

can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }

APT_LISTS_FRESH=0
# Installs Debian packages (as root); the package lists are refreshed once per run, and only when
# something is actually missing.
apt_install() {
  if [ "$APT_LISTS_FRESH" = 0 ]; then
    apt-get update -qq >/dev/null || return 1
    APT_LISTS_FRESH=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

find_pg_bindir() {
  local d best="" best_ver=0
  if [ -n "${TASKFLOW_PG_BINDIR:-}" ] && [ -x "$TASKFLOW_PG_BINDIR/pg_ctl" ]; then echo "$TASKFLOW_PG_BINDIR"; return; fi
  for d in /usr/lib/postgresql/*/bin /usr/local/pgsql/bin /usr/pgsql-*/bin; do
    [ -x "$d/pg_ctl" ] || continue
    local v; v="$("$d/pg_ctl" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)?.*/\1/')"
    if [ "$v" -ge 15 ] && [ "$v" -gt "$best_ver" ]; then best="$d"; best_ver="$v"; fi
  done
  echo "$best"
}

ensure_postgres() {
  local bindir; bindir="$(find_pg_bindir)"
  if [ -z "$bindir" ]; then
    if can_apt; then
      say "installing PostgreSQL server and tools from Debian (apt-get install postgresql postgresql-contrib)"
      apt_install postgresql postgresql-contrib || die "apt-get could not install PostgreSQL"
      # Debian starts its own cluster on 5432; TaskFlow manages its own clusters and needs none.
      bindir="$(find_pg_bindir)"
    fi
  fi
  [ -n "$bindir" ] || die "PostgreSQL 15 or newer (server and tools: initdb, pg_ctl, pg_dump, pg_basebackup, pg_receivewal, pg_verifybackup) is not installed. On Debian/Ubuntu: sudo apt-get install postgresql postgresql-contrib; or set TASKFLOW_PG_BINDIR to the directory holding pg_ctl."
  local tool
  for tool in initdb pg_ctl postgres psql pg_dump pg_restore pg_basebackup pg_receivewal pg_verifybackup pg_isready; do
    [ -x "$bindir/$tool" ] || die "$bindir/$tool is missing; install the PostgreSQL server and client tools of that version"
  done
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    die "running as root, TaskFlow runs PostgreSQL as the 'postgres' OS user, which does not exist: useradd --system --home /var/lib/postgresql postgres"
  fi
  export TASKFLOW_PG_BINDIR="$bindir"
}

ensure_node_modules() {
  local stamp="$TASKFLOW_ROOT/node_modules/.taskflow-installed"
  if [ ! -f "$stamp" ] || [ "$TASKFLOW_ROOT/package-lock.json" -nt "$stamp" ]; then
    say "installing npm dependencies (npm ci)"
    (cd "$TASKFLOW_ROOT" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
    touch "$stamp"
  fi
}

# The in-place ChaCha20-Poly1305 of backups (native/age-aead.c, through Node's own OpenSSL), built
# with the machine's C compiler against the running Node's headers; again when the source or the
# Node.js version changes. Without a compiler backups still work, sealed by libsodium, slower.
ensure_native_cipher() {
  local out="$TASKFLOW_ROOT/native/build/age-aead.node" stamp="$TASKFLOW_ROOT/native/build/age-aead.node.built-for"
  local version; version="$(node -p process.version)"
  if [ -f "$out" ] && [ "$out" -nt "$TASKFLOW_ROOT/native/age-aead.c" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
    return
  fi
  say "building the backup cipher module (native/build.sh)"
  local why
  if why="$(bash "$TASKFLOW_ROOT/native/build.sh" 2>&1)"; then
    echo "$version" >"$stamp"
  else
    say "warning: could not build native/build/age-aead.node (${why##*$'\n'}); backups are sealed with libsodium instead, about half as fast. Install a C compiler (apt-get install gcc) and run again."
  fi
}

# What only the test suite needs, not the server: wapiti, the web vulnerability scanner that
# test/security/wapiti.test.ts runs against a live server, and Chromium, which the browser suites
# (test/browser/) drive. scripts/test.sh calls this.
ensure_test_tools() {
  ensure_chromium
  ensure_wapiti
  ensure_ha_tools
}

ensure_chromium() {
  local chromium="${TASKFLOW_CHROMIUM:-/usr/bin/chromium}"
  [ -x "$chromium" ] && return
  if can_apt && [ -z "${TASKFLOW_CHROMIUM:-}" ]; then
    say "installing Chromium, which the browser tests drive (apt-get install chromium)"
    apt_install chromium || die "apt-get could not install chromium"
  fi
  [ -x "$chromium" ] \
    || die "Chromium (the browser test/browser/ drives through playwright-core) is not at $chromium. On Debian: sudo apt-get install chromium (or run this script as root); elsewhere install Chromium and set TASKFLOW_CHROMIUM to its executable. Then run again."
}

ensure_wapiti() {
  command -v wapiti >/dev/null 2>&1 && return
  if can_apt; then
    say "installing wapiti, the web vulnerability scanner of the security tests (apt-get install wapiti)"
    apt_install wapiti || die "apt-get could not install wapiti"
  fi
  command -v wapiti >/dev/null 2>&1 \
    || die "wapiti 3.0 (web vulnerability scanner; test/security/wapiti.test.ts runs it) is not installed. On Debian 12: sudo apt-get install wapiti (or run this script as root); elsewhere: pipx install wapiti3==3.0.4. Then run again."
}

# What the high-availability suite needs (test/patroni-failover.test.ts): Patroni and etcd, the HA
# engine TaskFlow follows on external clusters (docs/high-availability.md). Debian enables their
# services when it installs them; the tests start their own etcd and Patroni nodes and need none
# (systemctl disable --now etcd patroni).
ensure_ha_tools() {
  local missing=() tool package
  for tool in patroni:patroni etcd:etcd-server; do
    package="${tool#*:}"; tool="${tool%%:*}"
    command -v "$tool" >/dev/null 2>&1 || missing+=("$package")
  done
  [ "${#missing[@]}" -eq 0 ] && return
  if can_apt; then
    say "installing the high-availability test tools (apt-get install ${missing[*]})"
    apt_install "${missing[@]}" || die "apt-get could not install ${missing[*]}"
    return
  fi
  die "the high-availability tests need ${missing[*]} (Debian packages). Install them: sudo apt-get install ${missing[*]} (or run this script as root), then run again."
}

# What the backup suites need (test/backup-*.test.ts): the age CLI to prove our age streams
# interoperate, OpenSSH's server and client for the SFTP repository, zstd to open stored objects
# with the standard tools. scripts/test.sh calls this. Debian enables the ssh service when it
# installs openssh-server; the tests start their own sshd and need none (systemctl disable --now ssh).
ensure_backup_tools() {
  local missing=() tool package
  for tool in age:age age-keygen:age sshd:openssh-server ssh:openssh-client ssh-keygen:openssh-client zstd:zstd; do
    package="${tool#*:}"; tool="${tool%%:*}"
    if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
      case " ${missing[*]-} " in *" $package "*) ;; *) missing+=("$package") ;; esac
    fi
  done
  [ "${#missing[@]}" -eq 0 ] && return
  if can_apt; then
    say "installing the backup test tools (apt-get install ${missing[*]})"
    apt_install "${missing[@]}" || die "apt-get could not install ${missing[*]}"
    return
  fi
  die "the backup tests need ${missing[*]} (Debian packages). Install them: sudo apt-get install ${missing[*]} (or run this script as root), then run again."
}

# The web app (web/) is served from its build, web/dist: built when missing, or older than a source
# of the app or the installed dependencies, so that both Quickstart commands work on a fresh clone.
ensure_web_app() {
  local dist="$TASKFLOW_ROOT/web/dist/index.html" newer=""
  if [ -f "$dist" ]; then
    newer="$(cd "$TASKFLOW_ROOT" && find web/src web/index.html web/vite.config.ts web/tsconfig.json package-lock.json -newer "$dist" -print -quit 2>/dev/null)"
    [ -z "$newer" ] && return
  fi
  say "building the web app (npm run build:web)"
  (cd "$TASKFLOW_ROOT" && npm run --silent build:web >/dev/null) || die "building the web app failed: run npm run build:web to see why"
}

ensure_node
ensure_postgres
ensure_node_modules
ensure_native_cipher
ensure_web_app
