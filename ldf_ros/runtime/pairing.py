"""Approximate-time pairing of two streams, ROS-free, with the semantics of
message_filters' Python ApproximateTimeSynchronizer for two inputs:

- each input keeps its `queue_size` newest messages, keyed by stamp (a repeated stamp
  replaces the earlier message);
- when a message arrives, the waiting message of the other input closest in time is its
  partner if |dt| < slop (strictly); both leave their queues and the pair is emitted;
- otherwise the message waits; nothing is ever paired twice.

So 30 Hz RGB with 9 Hz thermal yields one pair per thermal frame (its nearest RGB frame
within the slop), and the unpaired RGB frames age out of the queue.
"""
from __future__ import annotations

from typing import Any, Callable


class ApproximatePairing:
    def __init__(self, slop_ns: int, queue_size: int, on_pair: Callable[[Any, Any], None]):
        if slop_ns <= 0 or queue_size < 1:
            raise ValueError("slop must be positive and queue_size at least 1")
        self.slop_ns = int(slop_ns)
        self.queue_size = int(queue_size)
        self.on_pair = on_pair
        self.queues: tuple[dict[int, Any], dict[int, Any]] = ({}, {})
        self.pairs = 0

    def add(self, index: int, stamp_ns: int, msg: Any) -> bool:
        """Offer a message of input `index` (0 or 1); returns True if it completed a pair."""
        mine, other = self.queues[index], self.queues[1 - index]
        mine.pop(stamp_ns, None)
        mine[stamp_ns] = msg
        while len(mine) > self.queue_size:
            del mine[min(mine)]
        best, best_dt = None, None
        for s in other:          # dict order = arrival order: ties go to the earlier arrival
            dt = abs(s - stamp_ns)
            if dt < self.slop_ns and (best_dt is None or dt < best_dt):
                best, best_dt = s, dt
        if best is None:
            return False
        partner = other.pop(best)
        del mine[stamp_ns]
        self.pairs += 1
        if index == 0:
            self.on_pair(msg, partner)
        else:
            self.on_pair(partner, msg)
        return True
