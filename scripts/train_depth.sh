#!/usr/bin/env bash
# Train the shipped depth networks: per modality a teacher, a student distilled from it, and
# the same student without distillation (the baseline issue 5 compares against).
# Usage: bash scripts/train_depth.sh [visible|thermal ...]   (runs resume where they stopped)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin/ldf-ros
modalities=("$@")
[ ${#modalities[@]} -eq 0 ] && modalities=(visible thermal)
for m in "${modalities[@]}"; do
  $bin train depth --config config/train_depth.yaml --modality "$m" --role teacher --out "out/train/depth_${m}_teacher"
  $bin train depth --config config/train_depth.yaml --modality "$m" --role student \
       --teacher "out/train/depth_${m}_teacher/model.safetensors" --out "out/train/depth_${m}_student"
  $bin train depth --config config/train_depth.yaml --modality "$m" --role student --out "out/train/depth_${m}_student_plain"
done
