#!/usr/bin/env bash
# Run a command N times while every core is kept busy by another process, and count the
# passes: how the suite and the demo are checked to hold on a loaded machine.
#   bash scripts/under_load.sh 5 bash scripts/test.sh
#   bash scripts/under_load.sh 1 bash scripts/demo.sh out/demo_loaded
set -uo pipefail
runs="$1"; shift
cores="$(nproc)"
pids=()
for _ in $(seq "$cores"); do
  python3 -c 'while True: pass' &
  pids+=("$!")
done
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
echo "[under_load] $cores busy-loop processes on $cores cores; running $runs time(s): $*" >&2
passed=0
for i in $(seq "$runs"); do
  start=$(date +%s)
  if "$@"; then passed=$((passed + 1)); result=pass; else result=FAIL; fi
  echo "[under_load] run $i/$runs: $result in $(( $(date +%s) - start )) s" >&2
done
echo "[under_load] $passed of $runs passed" >&2
[ "$passed" = "$runs" ]
