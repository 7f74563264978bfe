"""Input health for the node, ROS-free and clock-injectable: arrival rates and silences
(:class:`RateMeter`), and counting and rate-limiting of per-input problems (:class:`ProblemLog`),
so a flood of bad messages neither floods the log nor grows memory.

Each problem has a kind (for diagnostics counters: 'rgb', 'thermal', 'camera_info', 'pair',
'failure') and a reason (the text a user reads). The first occurrence of a reason is logged;
repeats are only counted, and a summary of the repeats is logged at most every `repeat_s`.
At most `max_reasons` distinct reasons are remembered (fuzzed inputs make endless distinct
reasons); beyond that new reasons share one bucket.
"""
from __future__ import annotations

import time
from collections import Counter, deque
from typing import Callable


class RateMeter:
    """Arrival rate over the last few seconds and time since the last message."""

    def __init__(self, window_s: float = 3.0, clock=time.monotonic):
        self.window_s, self.clock = window_s, clock
        self.times: deque[float] = deque()
        self.count = 0
        self.last = -float("inf")

    def tick(self) -> None:
        now = self.clock()
        self.last = now
        self.times.append(now)
        self.count += 1
        while self.times and now - self.times[0] > self.window_s:
            self.times.popleft()

    def rate_hz(self) -> float:
        now = self.clock()
        while self.times and now - self.times[0] > self.window_s:
            self.times.popleft()
        return len(self.times) / self.window_s

    def silent_s(self) -> float:
        return self.clock() - self.last


OVERFLOW = "(further distinct reasons not listed)"


class ProblemLog:
    def __init__(self, emit: Callable[[str, str], None], repeat_s: float = 60.0, max_reasons: int = 256,
                 clock: Callable[[], float] = time.monotonic):
        self.emit, self.repeat_s, self.max_reasons, self.clock = emit, repeat_s, max_reasons, clock
        self.by_kind: Counter[str] = Counter()
        self.by_reason: Counter[str] = Counter()
        self._unreported: Counter[str] = Counter()
        self._last_summary = clock()
        self.last: str = ""
        self._noted: set[str] = set()

    def report(self, kind: str, level: str, reason: str) -> bool:
        """Count one problem; returns True if it was logged now."""
        self.by_kind[kind] += 1
        self.last = reason
        key = reason if reason in self.by_reason or len(self.by_reason) < self.max_reasons else OVERFLOW
        first = self.by_reason[key] == 0
        self.by_reason[key] += 1
        if first:
            self.emit(level, reason)
        else:
            self._unreported[key] += 1
        self._maybe_summarize()
        return first

    def note(self, level: str, reason: str) -> None:
        """Log a condition once (e.g. 'no CameraInfo yet, using the config'); not counted as a problem."""
        if reason not in self._noted and len(self._noted) < self.max_reasons:
            self._noted.add(reason)
            self.emit(level, reason)

    def _maybe_summarize(self) -> None:
        now = self.clock()
        if not self._unreported or now - self._last_summary < self.repeat_s:
            return
        top = ", ".join(f"{n}x '{r[:80]}'" for r, n in self._unreported.most_common(3))
        more = len(self._unreported) - 3
        self.emit("warn", f"repeated in the last {now - self._last_summary:.0f} s: {top}"
                          + (f" and {more} more reasons" if more > 0 else ""))
        self._unreported.clear()
        self._last_summary = now
