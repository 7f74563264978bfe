#!/usr/bin/env bash
# Train the shipped fusion models: the DDPM denoiser, the fusion teacher (head on diffusion
# features, text-guided, depth-driven), the distilled single-pass student, and the two
# ablations (no text guidance, no depth-driven loss). Runs resume where they stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin/ldf-ros
$bin train diffusion --config config/train_diffusion.yaml
$bin train fusion --config config/train_fusion.yaml --role teacher --out out/train/fusion_teacher
$bin train fusion --config config/train_fusion.yaml --role student --teacher out/train/fusion_teacher/model.safetensors \
     --out out/train/fusion_student
