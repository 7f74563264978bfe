#!/usr/bin/env bash
# Train the shipped fusion models: the DDPM denoiser, the fusion teacher (head on diffusion
# features, text-guided, depth-driven), the single-pass student distilled from it, and the
# two ablations of the teacher (no text guidance, no depth-driven loss; 500 steps, compared
# with the teacher's 500-step snapshot). Runs resume where they stopped.
# Usage: bash scripts/train_fusion.sh [run folder root, default out/train]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin/ldf-ros
root=${1:-out/train}
cfg=config/train_fusion.yaml
$bin train diffusion --config config/train_diffusion.yaml --out "$root/diffusion"
$bin train fusion --config $cfg --role teacher --denoiser "$root/diffusion/model.safetensors" --out "$root/fusion_teacher"
$bin train fusion --config $cfg --role student --teacher "$root/fusion_teacher/model.safetensors" --out "$root/fusion_student"
$bin train fusion --config $cfg --role teacher --denoiser "$root/diffusion/model.safetensors" --steps 500 \
     --text-encoder none --out "$root/fusion_teacher_no_text"
$bin train fusion --config $cfg --role teacher --denoiser "$root/diffusion/model.safetensors" --steps 500 \
     --depth-weight 0 --out "$root/fusion_teacher_no_depth_loss"
