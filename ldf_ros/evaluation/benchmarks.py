"""Benchmarks that print measured numbers (never asserted in tests)."""
from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np


def machine_description() -> str:
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import os
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"python {platform.python_version()}")


def bench_synth(frames: int = 5, conditions=("day", "night", "fog"), thermal_size=(320, 256)) -> str:
    """Generation time of one RGB 640x512 + thermal frame pair (cast + render both), per condition."""
    from dataclasses import replace

    from ldf_ros.synthetic.rig import PinholeCamera, Rig
    from ldf_ros.synthetic.sequence import SequenceSpec, generate

    rig = replace(Rig(), thermal=PinholeCamera.from_hfov(thermal_size[0], thermal_size[1], 50.0))
    lines = [f"machine: {machine_description()}",
             f"pair = RGB 640x512 + thermal {thermal_size[0]}x{thermal_size[1]}, {frames} pairs per condition after 1 warm-up",
             "", "| condition | median s/pair | p95 s/pair |", "|---|---|---|"]
    for cond in conditions:
        spec = SequenceSpec(frames=frames + 1, conditions=(cond,), seed=0, registered_thermal=False, rig=rig)
        times, t0, seen = [], time.perf_counter(), 0
        for view in generate(spec, cond):
            seen += 1
            if seen % 2 == 0:  # rgb and thermal alternate at equal rates: one pair per two views
                now = time.perf_counter()
                times.append(now - t0)
                t0 = now
        times = np.asarray(times[1:])
        lines.append(f"| {cond} | {np.median(times):.3f} | {np.percentile(times, 95):.3f} |")
    return "\n".join(lines)


PIPELINE_STAGES = ("decode", "pairing", "register", "normalize", "depth", "caption", "fusion", "pointcloud", "encode_publish")
# node overhead: everything but model inference and captioning
OVERHEAD_STAGES = ("decode", "pairing", "register", "normalize", "pointcloud", "encode_publish")


def _test_pair(width: int, height: int):
    from ldf_ros.synthetic.clips import ClipSpec, render_clip
    clip = render_clip(ClipSpec(900, "urban", "night", frames=1, width=width, height=height))
    return clip.rgb[0], clip.thermal[0], clip.k


def bench_pipeline(variants=("classical", "student"), sizes=((320, 256), (640, 512)), repeats: int = 20,
                   warmup: int = 3, threads: int = 0, plot: str | None = None, device: str = "cpu",
                   config: str | None = None):
    """Per-stage latency of the node's work for one pair, median and p95 over `repeats` after warm-up.

    Stages outside the pipeline are measured on the same objects the node uses: decoding the
    Image messages (rclpy messages when rclpy is installed), pairing, and encoding + publishing
    the outputs (to a publisher without subscribers: serialization, no transport)."""
    import resource

    import torch

    from ldf_ros.config import load_config
    from ldf_ros.runtime.pairing import ApproximatePairing
    from ldf_ros.runtime.pipeline import FusionPipeline

    if threads:
        torch.set_num_threads(threads)
    io = _MessageIO()
    results = []
    for variant in variants:
        cfg = load_config(config, {"model.variant": variant, "runtime.device": device, "runtime.warmup_runs": 0})
        problems = []
        pipe = FusionPipeline(cfg, log=lambda level, msg: problems.append(msg))
        for w, h in sizes:
            rgb, thermal, k = _test_pair(w, h)
            rgb_msg, th_msg = io.encode(rgb, "rgb8"), io.encode(thermal, "mono16")
            samples = {s: [] for s in PIPELINE_STAGES}
            totals = []
            for i in range(warmup + repeats):
                t0 = time.perf_counter()
                rgb_in, th_in = io.decode(rgb_msg, "rgb8"), io.decode(th_msg, "mono16")
                t1 = time.perf_counter()
                pairing = ApproximatePairing(20_000_000, 10, lambda a, b: None)
                pairing.add(0, i, rgb_msg)
                pairing.add(1, i, th_msg)
                t2 = time.perf_counter()
                res = pipe.process(rgb_in, th_in, k, k)
                t3 = time.perf_counter()
                io.publish(res)
                t4 = time.perf_counter()
                if i < warmup:
                    continue
                samples["decode"].append((t1 - t0) * 1e3)
                samples["pairing"].append((t2 - t1) * 1e3)
                samples["encode_publish"].append((t4 - t3) * 1e3)
                for s, ms in res.timings_ms.items():
                    samples[s].append(ms)
                totals.append((t4 - t0) * 1e3)
            overhead = [sum(samples[s][j] for s in OVERHEAD_STAGES if samples[s]) for j in range(len(totals))]
            results.append({"variant": pipe.variant, "requested": variant, "size": f"{w}x{h}", "problems": problems,
                            "stages": {s: (float(np.median(v)), float(np.percentile(v, 95))) for s, v in samples.items() if v},
                            "total": (float(np.median(totals)), float(np.percentile(totals, 95))),
                            "overhead": (float(np.median(overhead)), float(np.percentile(overhead, 95))),
                            "fps": 1e3 / float(np.median(totals))})
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    text = _pipeline_markdown(results, repeats, warmup, peak_mb, io.kind, device)
    if plot:
        _plot_stages(results, plot)
    io.close()
    return text, results


def _latency_ms(fn, repeats: int, warmup: int, device: str) -> tuple[float, float]:
    """(median, p95) wall time of fn() in ms; CUDA work is synchronized so the time is the kernel time too."""
    import torch
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    times = []
    for i in range(warmup + repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times)), float(np.percentile(times, 95))


def bench_models(variants=("student", "teacher"), size=(640, 512), device: str = "cpu", precisions=("fp32",),
                 repeats: int = 20, warmup: int = 5, threads: int = 0, backends=("torch",),
                 onnx_providers=("cpu",), references: dict[str, str] | None = None) -> str:
    """Latency of the shipped networks alone for one pair, numpy in and numpy out, the caption
    embedding already cached (what a steady-state frame costs): fusion per variant and both
    depth branches, on PyTorch and on onnxruntime with each execution provider asked for.
    `references` (name -> shell command) are timed on the same pair and reported as ratios to
    the fastest fusion student row. Needs only torch (and onnxruntime for its rows)."""
    import torch

    from ldf_ros.config import load_config, resolve_path
    from ldf_ros.models.depth_net import load_depth_net
    from ldf_ros.models.text import CachedTextEncoder, NullTextEncoder
    from ldf_ros.runtime.depth import DepthPredictor
    from ldf_ros.runtime.learned_fusion import LearnedFusion, load_fusion_net

    if "fp16" in precisions and not device.startswith("cuda"):
        raise ValueError("fp16 is measured on cuda only (the CPU path runs fp32)")
    if threads:
        torch.set_num_threads(threads)
    w, h = size
    rgb, thermal, _ = _test_pair(w, h)
    thermal01 = (thermal.astype(np.float32) - thermal.min()) / max(float(thermal.max() - thermal.min()), 1.0)
    cfg = load_config(None, {})
    models = [(f"fusion {v}", resolve_path(f"models/fusion_{v}.safetensors"), "fusion") for v in variants]
    models += [("depth visible", resolve_path(cfg.model.depth_visible_weights), "visible"),
               ("depth thermal", resolve_path(cfg.model.depth_thermal_weights), "thermal")]
    lines = [f"machine: {machine_description()}" + (f"; GPU {torch.cuda.get_device_name()}" if device.startswith("cuda") else ""),
             f"one {w}x{h} pair, {repeats} runs after {warmup} warm-up, numpy in and out, caption embedding cached", "",
             "| model | parameters | backend | device | precision | median ms | p95 ms |", "|---|---|---|---|---|---|---|"]
    student_ms = []
    for name, path, kind in models:
        if "onnxruntime" in backends and name != "fusion teacher":       # the teacher runs in PyTorch only
            for provider in onnx_providers:
                for precision in (("fp32",) if provider == "cpu" else precisions):
                    net, fn, used = _onnxruntime_model(path, kind, threads, rgb, thermal01, provider, precision == "fp16")
                    med, p95 = _latency_ms(fn, repeats, warmup, "cpu")
                    params = sum(p.numel() for p in net.parameters())
                    lines.append(f"| {name} | {params / 1e6:.2f} M | onnxruntime | {used} | {precision} | {med:.1f} | {p95:.1f} |")
                    student_ms += [(med, f"onnxruntime {used} {precision}")] if name == "fusion student" else []
        if "torch" not in backends:
            continue
        for precision in precisions:
            fp16 = precision == "fp16"
            if kind == "fusion":
                net = load_fusion_net(path, None)
                run = LearnedFusion(net, CachedTextEncoder(NullTextEncoder(net.cfg.text_dim)), device, fp16)
                fn = lambda: run(rgb, thermal01, "cached caption")   # noqa: E731
            else:
                net = load_depth_net(path, kind)
                pred = DepthPredictor(net, device, fp16)
                fn = (lambda: pred(rgb)) if kind == "visible" else (lambda: pred(thermal01))  # noqa: E731
            params = sum(p.numel() for p in net.parameters())
            med, p95 = _latency_ms(fn, repeats, warmup, device)
            lines.append(f"| {name} | {params / 1e6:.2f} M | torch | {device} | {precision} | {med:.1f} | {p95:.1f} |")
            student_ms += [(med, f"torch {device} {precision}")] if name == "fusion student" else []
    if references:
        lines += ["", _reference_rows(references, rgb, thermal, repeats, min(student_ms) if student_ms else None)]
    return "\n".join(lines)


def _reference_rows(references: dict[str, str], rgb: np.ndarray, thermal: np.ndarray, repeats: int, student) -> str:
    """Time each reference command (placeholders {vi}, {ir}: the pair's PNG files; {out}: a folder
    for its output) `repeats` times after one warm-up, and its ratio to the fastest student row.
    A command's time includes its process start: say so beside the number."""
    import shlex
    import subprocess
    import tempfile

    import cv2

    tmp = Path(tempfile.mkdtemp(prefix="ldf_bench_ref_"))
    cv2.imwrite(str(tmp / "vi.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp / "ir.png"), thermal if thermal.dtype == np.uint8 else (thermal // 256).astype(np.uint8))
    (tmp / "out").mkdir()
    lines = ["| reference | median ms (process included) | ratio to the student |", "|---|---|---|"]
    for name, command in references.items():
        cmd = command.format(vi=shlex.quote(str(tmp / "vi.png")), ir=shlex.quote(str(tmp / "ir.png")),
                             out=shlex.quote(str(tmp / "out")))

        def run():
            done = subprocess.run(cmd, shell=True, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"reference {name}: `{cmd}` exited {done.returncode}: {done.stderr.strip()[-300:]}")

        med, _ = _latency_ms(run, repeats, 1, "cpu")
        ratio = f"{med / student[0]:.2f}x ({student[1]})" if student else "-"
        lines.append(f"| {name} | {med:.1f} | {ratio} |")
    return "\n".join(lines)


def _onnxruntime_model(path, kind: str, threads: int, rgb: np.ndarray, thermal01: np.ndarray, provider: str = "cpu",
                       fp16: bool = False):
    """(torch network, timed call, provider that ran) of a checkpoint exported to a temporary
    ONNX file and run by onnxruntime with `provider` (cpu, cuda, tensorrt; a missing one falls
    back and the row says so), with the same inputs as the torch rows."""
    import tempfile

    from ldf_ros.config import load_config
    from ldf_ros.models.depth_net import load_depth_net
    from ldf_ros.models.onnx_export import export_depth_onnx
    from ldf_ros.models.text import CachedTextEncoder, NullTextEncoder
    from ldf_ros.runtime.learned_fusion import OrtFusion, load_fusion_net
    from ldf_ros.runtime.onnx_depth import OnnxDepthPredictor, OnnxDepthSettings

    tmp = tempfile.mkdtemp(prefix="ldf_bench_")
    cfg = load_config(None, {"runtime.onnx_cache_dir": tmp, "runtime.onnx_provider": provider,
                             "runtime.num_threads": threads, "runtime.fp16": fp16})
    if kind == "fusion":
        net = load_fusion_net(path, None)
        run = OrtFusion(path, cfg, CachedTextEncoder(NullTextEncoder(net.cfg.text_dim)), check_text=False)
        return net, lambda: run(rgb, thermal01, "cached caption"), _provider_name(run.providers)
    net = load_depth_net(path, kind)
    c = net.cfg
    half = fp16 and provider == "cuda"         # TensorRT builds its fp16 engine from the fp32 file
    pred = OnnxDepthPredictor(export_depth_onnx(net, f"{tmp}/{kind}.onnx", fp16=half), kind,
                              OnnxDepthSettings(c.input_width, c.input_height, (0.0,) * 3, (1.0,) * 3, "metric",
                                                provider=provider, engine_cache_dir=f"{tmp}/tensorrt", fp16=fp16))
    fn = (lambda: pred(rgb)) if kind == "visible" else (lambda: pred(thermal01))
    return net, fn, _provider_name(pred.session.get_providers())


def _provider_name(providers: list[str]) -> str:
    return {"TensorrtExecutionProvider": "tensorrt", "CUDAExecutionProvider": "cuda"}.get(providers[0], "cpu")


def _pipeline_markdown(results, repeats, warmup, peak_mb, io_kind, device) -> str:
    lines = [f"machine: {machine_description()}; device {device}",
             f"{repeats} runs after {warmup} warm-up; messages: {io_kind}; peak RSS of the process {peak_mb:.0f} MB", "",
             "| variant | size | " + " | ".join(PIPELINE_STAGES) + " | overhead | total | pairs/s |",
             "|---" * (len(PIPELINE_STAGES) + 5) + "|"]
    for r in results:
        cells = [f"{r['stages'][s][0]:.1f}" if s in r["stages"] else "-" for s in PIPELINE_STAGES]
        lines.append(f"| {r['variant']} | {r['size']} | " + " | ".join(cells) +
                     f" | {r['overhead'][0]:.1f} (p95 {r['overhead'][1]:.1f}) | {r['total'][0]:.1f} (p95 {r['total'][1]:.1f}) "
                     f"| {r['fps']:.2f} |")
    lines.append("")
    notes = dict.fromkeys(f"{r['requested']}: {p}" for r in results for p in r["problems"])
    lines.append("Stage cells: median ms. Overhead = " + " + ".join(OVERHEAD_STAGES) + " (median and p95 of the sum). "
                 + " ".join(f"Note: {n}." for n in notes))
    return "\n".join(lines)


def _plot_stages(results, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['variant']} {r['size']}" for r in results]
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(results) + 1.5))
    left = np.zeros(len(results))
    for s in PIPELINE_STAGES:
        vals = np.array([r["stages"].get(s, (0.0, 0.0))[0] for r in results])
        ax.barh(labels, vals, left=left, label=s)
        left += vals
    ax.set_xlabel("median latency per pair (ms)")
    ax.set_title("ldf_ros pipeline latency by stage")
    ax.legend(fontsize=7, ncol=3, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


class _MessageIO:
    """Image message encode/decode and output publishing as the node does them; with rclpy
    when it is installed (real messages, real serialization), else the wire-format functions."""

    def __init__(self):
        try:
            import rclpy
            from sensor_msgs.msg import Image, PointCloud2
            from std_msgs.msg import String
            rclpy.init()
            self.node = rclpy.create_node("ldf_bench")
            self.pubs = {"image": self.node.create_publisher(Image, "~/bench/image", 2),
                         "points": self.node.create_publisher(PointCloud2, "~/bench/points", 2),
                         "caption": self.node.create_publisher(String, "~/bench/caption", 2)}
            self.kind = "rclpy messages, publish without subscribers"
        except ImportError:
            self.node = None
            self.kind = "wire-format functions (rclpy not installed)"

    def encode(self, arr, encoding):
        if self.node is not None:
            from ldf_ros.ros.conversions import numpy_to_image
            return numpy_to_image(arr, encoding)
        from ldf_ros.data.image_encoding import encode_image
        return encode_image(arr, encoding)

    def decode(self, msg, encoding):
        from ldf_ros.data.image_encoding import decode_image, to_rgb
        if self.node is not None:
            from ldf_ros.ros.conversions import image_to_numpy
            arr = image_to_numpy(msg)
        else:
            data, h, w, step = msg
            arr = decode_image(data, h, w, encoding, step, False)
        return to_rgb(arr, encoding) if encoding == "rgb8" else arr

    def publish(self, res) -> None:
        if self.node is None:
            from ldf_ros.data.image_encoding import encode_image
            encode_image(res.fused, "rgb8")
            if res.depth is not None:
                encode_image(res.depth, "32FC1")
            return
        from std_msgs.msg import String

        from ldf_ros.ros.conversions import numpy_to_image, xyzrgb_to_pointcloud2
        self.pubs["image"].publish(numpy_to_image(res.fused, "rgb8"))
        if res.depth is not None:
            self.pubs["image"].publish(numpy_to_image(res.depth, "32FC1"))
        if res.points_xyz is not None:
            self.pubs["points"].publish(xyzrgb_to_pointcloud2(res.points_xyz, res.points_rgb))
        self.pubs["caption"].publish(String(data=res.caption))

    def close(self) -> None:
        if self.node is not None:
            import rclpy
            self.node.destroy_node()
            rclpy.try_shutdown()
