"""Test session setup: an isolated DDS domain on loopback, repo paths, shared data."""
import os
import random
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROADSCENE = REPO.parent / "shared" / "datasets" / "roadscene"

# A domain of our own so parallel sessions or CI runs on one machine never cross-talk,
# and discovery that stays on this host.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
# Images over 512 KiB do not fit Fast DDS's default shared-memory segment and best-effort
# UDP fragments of them get lost; the package's profile (also set by the launch file) fixes it.
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(REPO / "config" / "fastdds_large_images.xml"))


@pytest.fixture(scope="session")
def roadscene():
    if not (ROADSCENE / "val" / "vi").is_dir():
        pytest.skip(f"RoadScene not found at {ROADSCENE}")
    return ROADSCENE
