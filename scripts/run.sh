#!/usr/bin/env bash
# `make run`: start the local cluster "orrery", show how to use it, follow its log until
# Ctrl-C, then stop it (`orrery down`; its objects are kept for the next run).
#
# Usage: scripts/run.sh [BUILD_DIR]     (default: build)
set -euo pipefail

build_dir=${1:-build}
orrery="$build_dir/app/orrery/orrery"
if [ ! -x "$orrery" ]; then
  echo "run: $orrery is not built; run 'make build' first" >&2
  exit 1
fi
orrery=$(cd "$(dirname "$orrery")" && pwd)/orrery

data_dir="${XDG_DATA_HOME:-$HOME/.local/share}/orrery/orrery"
# A new cluster gets three simulated nodes, so pods are scheduled and run at once; an existing
# one keeps what it was given before.
if [ -f "$data_dir/cluster.json" ]; then
  "$orrery" up
else
  "$orrery" up --simulated-nodes 3
fi

pid=$(cat "$data_dir/control-plane.pid" 2>/dev/null || true)

tail_pid=""
stopping=0
stop() {
  [ "$stopping" = 1 ] && return
  stopping=1
  trap - INT TERM HUP
  [ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null || true
  echo
  "$orrery" down || true
}
trap 'stop; exit 0' INT TERM HUP

cat <<EOF

The cluster "orrery" is running (control plane pid ${pid:-?}). Try:

  kubectl get nodes
  kubectl create deployment hello --image=nginx --replicas=3
  kubectl get pods -o wide
  kubectl get schedulingattempts        # why each pod went where it went (docs/scheduling.md)
  $orrery status

Following $data_dir/control-plane.log. Press Ctrl-C to stop the cluster.

EOF

tail -n 0 -F "$data_dir/control-plane.log" &
tail_pid=$!

# Running = exists and is not a zombie (an unreaped zombie still answers kill -0).
alive() {
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# Wait for Ctrl-C, or for the control plane to end on its own.
while [ -n "$pid" ] && alive "$pid"; do
  sleep 1 &
  wait $! || true
done

if [ "$stopping" = 0 ]; then
  echo "run: the control plane (pid ${pid:-?}) exited; see $data_dir/control-plane.log" >&2
  stop
  exit 1
fi
