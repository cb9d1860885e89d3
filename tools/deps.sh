#!/usr/bin/env bash
# deps.sh — installs the Debian packages Keel needs to build and test, only those missing.
set -euo pipefail
need=(build-essential pkg-config libevent-dev libprotobuf-c-dev protobuf-c-compiler
      libssl-dev check openssl iproute2 nftables procps psmisc python3 gnuplot-nox)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
