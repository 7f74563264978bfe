#!/usr/bin/env bash
# Train the shipped fusion models: the DDPM denoiser, the fusion teacher (head on diffusion
# features, text-guided, depth-driven), the single-pass student distilled from it and then
# fine-tuned (models/fusion_student.safetensors is fusion_student_tuned), and the
# two ablations of the teacher (no text guidance, no depth-driven loss), all for the steps in
# config/train_fusion.yaml. Runs resume where they stopped.
# Usage: bash scripts/train_fusion.sh [run folder root, default out/train]
# Environment: DENOISER=path reuses a trained denoiser instead of training one under the root;
# THREADS sets torch threads per run (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin/ldf-ros
root=${1:-out/train}
cfg=config/train_fusion.yaml
threads=${THREADS:-0}
denoiser=${DENOISER:-}
if [ -z "$denoiser" ]; then
  $bin train diffusion --config config/train_diffusion.yaml --threads "$threads" --out "$root/diffusion"
  denoiser=$root/diffusion/model.safetensors
fi
teacher() { $bin train fusion --config $cfg --role teacher --denoiser "$denoiser" --threads "$threads" "$@"; }
teacher --out "$root/fusion_teacher"
# the student: distilled from the teacher (a stronger depth-driven term keeps its contrast),
# then fine-tuned on the losses alone with the edge-preservation term (config/train_fusion_tune.yaml)
$bin train fusion --config $cfg --role student --teacher "$root/fusion_teacher/model.safetensors" --threads "$threads" \
     --depth-weight 0.4 --out "$root/fusion_student"
$bin train fusion --config config/train_fusion_tune.yaml --init "$root/fusion_student/model.safetensors" \
     --threads "$threads" --out "$root/fusion_student_tuned"
teacher --text-encoder none --out "$root/fusion_teacher_no_text"
teacher --depth-weight 0 --out "$root/fusion_teacher_no_depth_loss"
