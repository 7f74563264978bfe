"""The node's machinery without ROS: the keep-latest worker, its watchdog, problem counting,
input limits and the lockstep pair planner. Timing is driven by events and injected clocks."""
import threading

import numpy as np
import pytest

from ldf_ros.ops.camera import intrinsics_problem
from ldf_ros.ros.bag_replay import pair_completions
from ldf_ros.data.image_encoding import ImageEncodingError, check_image_limits
from ldf_ros.runtime.monitor import OVERFLOW, ProblemLog, RateMeter
from ldf_ros.runtime.pipeline import InputError, check_intrinsics
from ldf_ros.runtime.worker import LatestWorker

WAIT = 30.0   # only a guard against hanging: every wait below ends on an event, not on time


class Gate:
    """process() that records items and blocks on the first one until released."""

    def __init__(self):
        self.entered, self.release, self.done = threading.Event(), threading.Event(), threading.Event()
        self.items = []

    def __call__(self, item):
        if not self.items:
            self.entered.set()
            assert self.release.wait(WAIT)
        self.items.append(item)
        if item == "last":
            self.done.set()


def wait_idle(worker):
    ev = threading.Event()
    for _ in range(int(WAIT / 0.01)):
        if worker.idle():
            return
        ev.wait(0.01)
    raise AssertionError("worker never went idle")


def test_a_busy_worker_keeps_only_the_newest_pair():
    gate = Gate()
    w = LatestWorker(gate, on_error=lambda e, where: None)
    w.start()
    try:
        w.submit("first")
        assert gate.entered.wait(WAIT)           # the worker holds "first"
        dropped = [w.submit(x) for x in ("a", "b", "c", "last")]
        gate.release.set()
        assert gate.done.wait(WAIT)
        assert gate.items == ["first", "last"]   # fixed by construction, whatever the machine speed
        assert dropped == [False, True, True, True]
        wait_idle(w)
        assert (w.counters.submitted, w.counters.dropped, w.counters.processed) == (5, 3, 2)
    finally:
        assert w.stop()


def test_an_exception_skips_the_item_and_the_worker_goes_on():
    errors, seen, done = [], [], threading.Event()

    def process(item):
        if item == "bad":
            raise ValueError("camera intrinsics have a non-positive focal length (fx=nan, fy=nan)")
        seen.append(item)
        done.set()

    w = LatestWorker(process, on_error=lambda e, where: errors.append((where, str(e))))
    w.start()
    try:
        w.submit("bad")
        wait_idle(w)
        w.submit("good")
        assert done.wait(WAIT)
        assert seen == ["good"] and errors == [("process", "camera intrinsics have a non-positive focal length "
                                                           "(fx=nan, fy=nan)")]
        assert w.counters.failed == 1 and w.alive()
    finally:
        w.stop()


def test_a_failing_error_reporter_cannot_kill_the_worker():
    done = threading.Event()

    def reporter(exc, where):
        raise ValueError("Logger severity cannot be changed between calls.")

    w = LatestWorker(lambda item: done.set() if item == "good" else 1 / 0, on_error=reporter)
    w.start()
    try:
        w.submit("bad")
        wait_idle(w)
        w.submit("good")
        assert done.wait(WAIT) and w.alive()
    finally:
        w.stop()


def test_the_watchdog_restarts_a_thread_that_ended():
    done, deaths = threading.Event(), []

    def process(item):
        if item == "exit":
            raise SystemExit("a library called sys.exit")
        done.set()

    w = LatestWorker(process, on_error=lambda e, where: deaths.append(where))
    w.start()
    try:
        w.submit("exit")
        w._thread.join(WAIT)
        assert not w.alive() and "SystemExit" in w.last_death and deaths == ["thread"]
        assert w.ensure_alive() and w.counters.restarts == 1
        assert not w.ensure_alive()              # alive now: nothing to do
        w.submit("good")
        assert done.wait(WAIT)
    finally:
        w.stop()
    assert not w.ensure_alive()                  # stopped on purpose: not restarted


def test_stop_waits_for_the_item_in_progress():
    gate = Gate()
    w = LatestWorker(gate, on_error=lambda e, where: None)
    w.start()
    w.submit("first")
    assert gate.entered.wait(WAIT)
    threading.Timer(0.2, gate.release.set).start()
    assert w.stop(timeout_s=WAIT)
    assert gate.items == ["first"] and not w.alive()


def test_problem_log_logs_each_reason_once_and_summarizes_repeats():
    now = [0.0]
    lines = []
    log = ProblemLog(lambda level, msg: lines.append((level, msg)), repeat_s=60, max_reasons=3, clock=lambda: now[0])
    assert log.report("rgb", "warn", "step too small")
    assert not log.report("rgb", "warn", "step too small")
    log.report("thermal", "warn", "bad encoding")
    assert lines == [("warn", "step too small"), ("warn", "bad encoding")]
    now[0] = 61.0
    log.report("rgb", "warn", "step too small")
    assert "repeated in the last 61 s: 2x 'step too small'" in lines[-1][1]
    for i in range(10):                          # endless distinct reasons share one bucket
        log.report("rgb", "warn", f"data has {i} bytes")
    assert len(log.by_reason) == 4 and log.by_reason[OVERFLOW] == 9   # 3 reasons and the bucket
    assert log.by_kind == {"rgb": 13, "thermal": 1}


def test_rate_meter_with_an_injected_clock():
    now = [100.0]
    m = RateMeter(window_s=2.0, clock=lambda: now[0])
    assert m.silent_s() == float("inf")
    for _ in range(10):
        m.tick()
        now[0] += 0.1
    assert m.rate_hz() == pytest.approx(5.0) and m.silent_s() == pytest.approx(0.1)
    now[0] += 5.0
    assert m.rate_hz() == 0.0 and m.silent_s() == pytest.approx(5.1) and m.count == 10


@pytest.mark.parametrize("h,w,nbytes,reason", [
    (1, 100000, 300000, "exceeds limits.max_width"),
    (100000, 1, 200000, "exceeds limits.max_width"),
    (20000, 20000, 100, "exceeds limits.max_width"),
    (10, 1000, 30000, "aspect ratio 100.0"),
    (512, 640, 10**9, "exceeds limits.max_bytes"),
])
def test_image_limits_reject_absurd_shapes(h, w, nbytes, reason):
    with pytest.raises(ImageEncodingError, match=reason):
        check_image_limits(nbytes, h, w, max_width=4096, max_height=4096, max_aspect=8.0, max_bytes=64 << 20)


def test_image_limits_accept_camera_images():
    check_image_limits(640 * 512 * 3, 512, 640, 4096, 4096, 8.0, 64 << 20)
    check_image_limits(4096 * 4096 * 4, 4096, 4096, 4096, 4096, 8.0, 64 << 20)


@pytest.mark.parametrize("k,reason", [
    ([[np.nan, 0, 320], [0, np.nan, 256], [0, 0, 1]], "non-finite"),
    ([[0, 0, 320], [0, 0, 256], [0, 0, 1]], "non-positive focal length"),
    ([[-500, 0, 320], [0, 500, 256], [0, 0, 1]], "non-positive focal length"),
    ([[500, 0, 320], [0, 500, 256], [0, 0, 0]], "last row"),
    ([[np.inf, 0, 320], [0, 500, 256], [0, 0, 1]], "non-finite"),
])
def test_bad_intrinsics_are_named(k, reason):
    assert reason in intrinsics_problem(np.array(k, float))
    with pytest.raises(InputError, match="RGB intrinsics: .*" + reason):
        check_intrinsics("RGB", np.array(k, float))


def test_good_intrinsics_pass():
    assert intrinsics_problem(np.array([[500.0, 0, 320], [0, 500, 256], [0, 0, 1]])) is None
    check_intrinsics("RGB", None)


def test_lockstep_plan_pairs_30hz_rgb_with_9hz_thermal():
    s, rgb_hz, th_hz = 1_000_000_000, 30, 9
    msgs = [(0, round(i * s / rgb_hz)) for i in range(30)] + [(1, round(j * s / th_hz) + 4_000_000) for j in range(9)]
    msgs.sort(key=lambda m: m[1])
    done = pair_completions(msgs, slop_ns=20_000_000, queue_size=10)
    assert len(done) == 9                                       # one pair per thermal frame
    for pos, rgb_stamp in done.items():
        index, stamp = msgs[pos]                                # the later of the two completes it
        thermal = stamp if index == 1 else next(t for i, t in msgs if i == 1 and abs(t - rgb_stamp) < 20_000_000)
        assert rgb_stamp == min((t for i, t in msgs if i == 0), key=lambda t: abs(t - thermal))
        assert stamp == max(thermal, rgb_stamp)
