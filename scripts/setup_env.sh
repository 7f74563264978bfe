#!/usr/bin/env bash
# Create .venv with pinned dependencies. Idempotent: a stamp file holding the hash of
# the requirement files makes a second run a no-op (about a second).
# With a sourced ROS 2 distro (ROS_DISTRO set and rclpy importable), the venv sees the
# distro's site-packages and the ros-* PyPI wheels are skipped.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LDF_VENV:-$root/.venv}"
py="${PYTHON:-python3}"

use_distro=0
if [ -n "${ROS_DISTRO:-}" ] && "$py" -c "import rclpy" >/dev/null 2>&1; then
  use_distro=1
fi

reqs=("$root/requirements.txt")
[ "$use_distro" = 1 ] || reqs+=("$root/requirements-ros.txt")
stamp_value="$(cat "${reqs[@]}" "$root/setup.py" | sha256sum | cut -d' ' -f1)-distro$use_distro"
stamp="$venv/.ldf_ros_stamp"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_value" ]; then
  exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
  if [ "$use_distro" = 1 ]; then
    "$py" -m venv --system-site-packages "$venv"
  else
    "$py" -m venv "$venv"
  fi
fi
pip_args=(--disable-pip-version-check -q)
for r in "${reqs[@]}"; do
  echo "[setup_env] installing $(basename "$r") into $venv" >&2
  "$venv/bin/python" -m pip install "${pip_args[@]}" -r "$r"
done
echo "[setup_env] installing ldf_ros (editable)" >&2
"$venv/bin/python" -m pip install "${pip_args[@]}" --no-deps --no-build-isolation -e "$root"
echo "$stamp_value" > "$stamp"
