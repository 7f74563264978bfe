#!/usr/bin/env bash
# The GPU measurements in one command (a few minutes on a CUDA machine):
#   bash scripts/bench_gpu.sh [OUT_DIR]
# 1. the networks alone at 640x512: PyTorch CUDA fp32/fp16, onnxruntime with the CUDA and
#    TensorRT providers (fp32/fp16; a missing provider falls back and its row says which ran);
# 2. the node's whole pipeline (decode .. publish, student fusion and both depth branches) on
#    PyTorch CUDA fp16 and on onnxruntime (TensorRT if present) fp16, with pairs/s.
# Markdown goes to stdout and OUT_DIR (default out/bench_gpu). For a dry run on a CPU machine:
#   LDF_BENCH_DEVICE=cpu LDF_BENCH_SIZE=96x64 LDF_BENCH_REPEATS=1 bash scripts/bench_gpu.sh /tmp/b
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/bench_gpu}
device=${LDF_BENCH_DEVICE:-cuda}
size=${LDF_BENCH_SIZE:-640x512}
repeats=${LDF_BENCH_REPEATS:-50}
py=${PYTHON:-python3}
mkdir -p "$out"
precisions=fp32,fp16
[ "$device" = cpu ] && precisions=fp32
"$py" -m ldf_ros.cli bench models --variants student,teacher --sizes "$size" --device "$device" \
    --precisions "$precisions" --repeats "$repeats" --backends torch,onnxruntime --onnx-providers cuda,tensorrt \
    | tee "$out/models.md"
for backend in torch onnxruntime; do
    cat > "$out/pipeline_$backend.yaml" <<YAML
/**/ldf_fusion:
  ros__parameters:
    runtime:
      device: $device
      fp16: $([ "$device" = cpu ] && echo false || echo true)
      backend: $backend
      onnx_provider: auto
      onnx_cache_dir: $out/onnx_cache
YAML
    echo
    echo "pipeline, runtime.backend $backend:"
    "$py" -m ldf_ros.cli bench --variants student --sizes "$size" --device "$device" --repeats "$repeats" \
        --config "$out/pipeline_$backend.yaml" | tee "$out/pipeline_$backend.md"
done
