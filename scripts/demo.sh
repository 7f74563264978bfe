#!/usr/bin/env bash
# The main job: set up the environment if needed, then run synthetic day/night/fog bags
# through the real fusion node over DDS and write reports to out/demo (or $1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$PWD/config/fastdds_large_images.xml}"
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
.venv/bin/ldf-ros demo --out "${1:-out/demo}"
