"""Benchmarks that print measured numbers (never asserted in tests)."""
from __future__ import annotations

import platform
import time

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
