#!/usr/bin/env bash
# Machine set-up for `make demo` and `make check`: Debian packages, a running
# Docker engine, the build, and an image for sandboxes. Idempotent, quick when
# everything is already there, never interactive.
#
#   SBX=path      the sbx CLI used to build the base image (default build/sbx)
set -euo pipefail

cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# clang and libclang-rt-14-dev (libclang_rt.fuzzer) build the fuzz targets;
# clang-format checks the layout (.clang-format).
PACKAGES=(build-essential pkg-config curl libcurl4-openssl-dev libjansson-dev libarchive-dev
          libpcre2-dev musl-tools docker.io debootstrap python3-docker hyperfine busybox-static
          btrfs-progs clang libclang-rt-14-dev clang-format
          libmicrohttpd-dev python3-dev python3-setuptools python3-wheel python3-pytest python3-venv python3-pip)
# The MCP tests run the official SDK client under node; a node from elsewhere
# (nodesource) is used as it is, Debian's otherwise.
command -v node >/dev/null && command -v npm >/dev/null || PACKAGES+=(nodejs npm)

# Root, or a password-less sudo, for what needs it.
as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    die "'$*' needs root; run scripts/setup.sh as root (or with password-less sudo)"
  fi
}

# --- 1. Debian packages -----------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  as_root apt-get update -qq </dev/null || die "apt-get update failed; check the network and /etc/apt/sources.list.d"
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null \
    || die "apt-get install ${missing[*]} failed"
  say "installed ${missing[*]}"
fi

# --- 2. Docker engine ---------------------------------------------------------
# The checks speak the engine's HTTP API with curl, as libsbx does; the docker
# CLI is not used.
host="${DOCKER_HOST:-unix:///var/run/docker.sock}"
case "$host" in
  unix://*)
    sock="${host#unix://}"
    sock="${sock:-/var/run/docker.sock}"
    engine() { curl -sS --max-time 10 --unix-socket "$sock" "http://localhost$1" "${@:2}"; }
    ;;
  tcp://*)
    sock=""
    scheme=http
    [ -n "${DOCKER_TLS_VERIFY:-}" ] && scheme=https
    certs="${DOCKER_CERT_PATH:-$HOME/.docker}"
    engine() {
      if [ "$scheme" = https ]; then
        curl -sS --max-time 10 --cacert "$certs/ca.pem" --cert "$certs/cert.pem" \
          --key "$certs/key.pem" "https://${host#tcp://}$1" "${@:2}"
      else
        curl -sS --max-time 10 "http://${host#tcp://}$1" "${@:2}"
      fi
    }
    ;;
  *) die "DOCKER_HOST=$host is not unix:///path or tcp://host:port" ;;
esac

ping_engine() { [ "$(engine /_ping 2>/dev/null)" = OK ]; }

if ! ping_engine; then
  [ -n "$sock" ] || die "no Docker engine answers at $host; start it there, or unset DOCKER_HOST"
  if [ "$sock" != /var/run/docker.sock ] && [ "$sock" != /run/docker.sock ]; then
    die "no Docker engine answers at $host; start it, or unset DOCKER_HOST to use the default"
  fi
  if [ -S "$sock" ] && [ "$(id -u)" != 0 ] && ! [ -w "$sock" ]; then
    die "permission denied on $sock; run as root or add your user to the docker group"
  fi
  # A dockerd that is still starting is waited for, not doubled.
  if ! pgrep -x dockerd >/dev/null; then
    command -v dockerd >/dev/null || die "dockerd is not installed (apt-get install docker.io)"
    [ "$(id -u)" = 0 ] || die "no Docker engine is running and starting dockerd needs root"
    # Its own session, so a Ctrl-C in make does not stop the engine.
    nohup setsid dockerd >/var/log/sbx-dockerd.log 2>&1 </dev/null &
    started=1
  fi
  for _ in $(seq 1 120); do
    ping_engine && break
    sleep 0.5
  done
  if ! ping_engine; then
    if [ -f /var/log/sbx-dockerd.log ]; then
      tail -n 15 /var/log/sbx-dockerd.log >&2 || true
    fi
    die "the Docker engine did not answer on $sock within 60 s (log: /var/log/sbx-dockerd.log)"
  fi
  if [ "${started:-0}" = 1 ]; then
    say "dockerd started"
  else
    say "dockerd is up"
  fi
fi

# --- 3. Build and image -------------------------------------------------------
log="$(mktemp /tmp/sbx-setup-make.XXXXXX)"
if ! make all >"$log" 2>&1 </dev/null; then
  tail -n 40 "$log" >&2
  rm -f "$log"
  die "make all failed (the last lines are above)"
fi
rm -f "$log"

image_present() {
  [ "$(engine "/images/$1/json" -o /dev/null -w '%{http_code}' 2>/dev/null)" = 200 ]
}

# The tests run on it (and the offline flavours of the runtimes build on
# it) whatever other images the engine holds.
if ! image_present sbx/base:bookworm; then
  sbx="${SBX:-build/sbx}"
  [ -x "$sbx" ] || die "$sbx was not built; cannot build the base image"
  say "building the base image sbx/base:bookworm with debootstrap (about a minute)"
  start=$(date +%s)
  blog="$(mktemp /tmp/sbx-setup-bootstrap.XXXXXX)"
  if ! as_root "$sbx" image bootstrap >"$blog" 2>&1 </dev/null; then
    tail -n 20 "$blog" >&2
    rm -f "$blog"
    die "building sbx/base:bookworm failed (the last lines are above)"
  fi
  rm -f "$blog"
  image_present sbx/base:bookworm || die "sbx image bootstrap succeeded but sbx/base:bookworm is missing"
  say "base image sbx/base:bookworm built in $(( $(date +%s) - start )) s"
fi
# The tests' image without GNU coreutils: busybox's shell and a few applets
# (no realpath, stat or xargs), imported from a folder. `sbx mcp` must work
# on it as on any other.
BUSYBOX_IMAGE=sbx-test/busybox:1
if ! image_present "$BUSYBOX_IMAGE"; then
  [ -x /bin/busybox ] || die "/bin/busybox is missing (apt-get install busybox-static)"
  root="$(mktemp -d /tmp/sbx-busybox.XXXXXX)"
  mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/workspace"
  cp /bin/busybox "$root/bin/busybox"
  for applet in sh echo cat ls mkdir rm ln printf true false sleep test head tr grep; do
    ln -s busybox "$root/bin/$applet"
  done
  code=$(tar -C "$root" -c . | engine "/images/create?fromSrc=-&repo=sbx-test/busybox&tag=1" \
           -X POST -H 'Content-Type: application/x-tar' --data-binary @- -o /dev/null -w '%{http_code}')
  rm -rf "$root"
  [ "$code" = 200 ] && image_present "$BUSYBOX_IMAGE" || die "could not import $BUSYBOX_IMAGE (HTTP $code)"
  say "made the test image $BUSYBOX_IMAGE"
fi
say "ready"
