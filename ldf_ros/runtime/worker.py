"""One background worker with a one-slot mailbox: the newest item wins, the worker never dies.

The node hands each synchronized pair to :class:`LatestWorker`. When processing is slower than
the cameras, a pair still waiting when a newer one arrives is dropped and counted instead of
queued, so latency and memory stay bounded. Every exception raised while processing an item is
caught, counted and reported through `on_error`, and the item is skipped; should the thread end
anyway (a `BaseException` such as `SystemExit` from a library), :meth:`ensure_alive` notices,
counts it and starts a new thread. ROS-free, so all of this is tested without a middleware.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class WorkerCounters:
    submitted: int = 0
    dropped: int = 0        # replaced in the mailbox before the worker took them
    processed: int = 0      # process() returned
    failed: int = 0         # process() raised; the item was skipped
    restarts: int = 0       # the thread had ended and was started again


class LatestWorker:
    """Runs `process(item)` on a thread for the newest submitted item.

    `warmup` runs once on the thread before the first item (its exceptions go to `on_error`
    too). `on_error(exc, where)` is called from the worker thread and must not raise; if it
    does, that is swallowed, so reporting can never kill the worker.
    """

    def __init__(self, process: Callable[[Any], None], on_error: Callable[[BaseException, str], None],
                 warmup: Callable[[], None] | None = None, name: str = "ldf_worker"):
        self._process, self._on_error, self._warmup, self._name = process, on_error, warmup, name
        self._cv = threading.Condition()
        self._mailbox: Any = None
        self._has_item = False
        self._running = False
        self._busy = False
        self._thread: threading.Thread | None = None
        self.counters = WorkerCounters()
        self.last_death: str = ""

    # --- control ----------------------------------------------------------------------------
    def start(self) -> None:
        with self._cv:
            self._running = True
        self._spawn(first=True)

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Ask the worker to finish its current item and end; True when it has ended."""
        with self._cv:
            self._running = False
            self._has_item, self._mailbox = False, None
            self._cv.notify_all()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=timeout_s)
            return not t.is_alive()
        return True

    @property
    def running(self) -> bool:
        return self._running

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def ensure_alive(self) -> bool:
        """Start a new thread if the worker should run but its thread has ended; True if restarted."""
        if not self._running or self.alive():
            return False
        self.counters.restarts += 1
        self._spawn(first=False)
        return True

    def submit(self, item: Any) -> bool:
        """Put `item` in the mailbox; True if it replaced a waiting item (that one is dropped)."""
        with self._cv:
            dropped = self._has_item
            if dropped:
                self.counters.dropped += 1
            self._mailbox, self._has_item = item, True
            self.counters.submitted += 1
            self._cv.notify()
        return dropped

    def idle(self) -> bool:
        """Nothing waiting and nothing being processed."""
        with self._cv:
            return not self._has_item and not self._busy

    # --- thread -----------------------------------------------------------------------------
    def _spawn(self, first: bool) -> None:
        self._thread = threading.Thread(target=self._run, args=(first,), name=self._name, daemon=True)
        self._thread.start()

    def _report(self, exc: BaseException, where: str) -> None:
        try:
            self._on_error(exc, where)
        except Exception:  # noqa: BLE001 - reporting must never take the worker down
            pass

    def _run(self, first: bool) -> None:
        try:
            if first and self._warmup is not None:
                try:
                    self._warmup()
                except Exception as exc:  # noqa: BLE001 - warm-up problems show again on real items
                    self._report(exc, "warmup")
            while True:
                with self._cv:
                    while not self._has_item and self._running:
                        self._cv.wait(timeout=0.5)
                    if not self._running:
                        return
                    item, self._mailbox, self._has_item = self._mailbox, None, False
                    self._busy = True
                try:
                    self._process(item)
                    self.counters.processed += 1
                except Exception as exc:  # noqa: BLE001 - one bad item must not stop the stream
                    self.counters.failed += 1
                    self._report(exc, "process")
                finally:
                    with self._cv:
                        self._busy = False
        except BaseException as exc:  # noqa: BLE001 - recorded for the watchdog, then the thread ends
            self.last_death = f"{type(exc).__name__}: {exc}"
            self._report(exc, "thread")
