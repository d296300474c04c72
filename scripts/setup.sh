#!/usr/bin/env bash
# Installs every Debian 12 package Orrery needs to build, test and run.
# Idempotent and quiet when everything is already there, so `make run` / `make test`
# can call it every time.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libboost-dev libboost-system-dev libssl-dev
  nlohmann-json3-dev libyaml-cpp-dev libsqlite3-dev libcurl4-openssl-dev
  libspdlog-dev libfmt-dev libcli11-dev libjemalloc-dev liblz4-dev
  qt6-base-dev qt6-base-dev-tools qt6-declarative-dev
  openssl procps psmisc curl python3 python3-yaml tzdata
  etcd-server etcd-client
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing packages: ${missing[*]}" >&2
    echo "setup: run 'make setup' as root (or install them with apt-get) and try again" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
