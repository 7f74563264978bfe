"""Time from a signal to the node's exit: start the node (classical fusion, no warm-up), wait
until it is up, send SIGINT (or SIGTERM with `term`), print the exit code and the seconds.
    .venv/bin/python scripts/shutdown_time.py [int|term]"""
import signal
import subprocess
import sys
import time

proc = subprocess.Popen([sys.executable, "-m", "ldf_ros.ros.fusion_node", "--ros-args", "-p", "model.variant:=classical",
                         "-p", "runtime.warmup_runs:=0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
for line in proc.stdout:
    if "ldf_fusion up" in line:
        break
time.sleep(2.0)
t0 = time.monotonic()
proc.send_signal(signal.SIGTERM if sys.argv[1:] == ["term"] else signal.SIGINT)
rc = proc.wait()
print(f"exit code {rc} after {time.monotonic() - t0:.2f} s")
