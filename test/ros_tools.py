"""Helpers for tests over real DDS: a node in this process, spinning until a condition holds."""
from __future__ import annotations

import signal
import subprocess
import time
from typing import Callable


def spin_until(executor, predicate: Callable[[], bool], timeout_s: float) -> bool:
    """Spin `executor` until `predicate()` is true or the timeout passes; returns the predicate."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        executor.spin_once(timeout_sec=0.05)
    return predicate()


def stop_process(proc: subprocess.Popen, timeout_s: float = 5.0) -> None:
    """SIGINT first so rclpy shuts down and frees its shared-memory segments; kill if stuck."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
