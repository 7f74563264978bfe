"""ldf_ros.training: the losses and loops that make the shipped weights (never imported at run time)."""
import math


def cosine_decay(step: int, steps: int) -> float:
    """Learning-rate factor from 1 to 0 over the run: the last weights are the settled ones,
    not a snapshot of a still-noisy optimizer."""
    return 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps))
