"""Fusion metrics on analytic cases, and the classical baselines they are compared with."""
import numpy as np
import pytest

from ldf_ros.evaluation import fusion_metrics as fm
from ldf_ros.ops.image import ssim
from ldf_ros.runtime.classical_fusion import BASELINES

RNG = np.random.default_rng(0)
IMG = np.clip(RNG.normal(120, 40, (64, 80)), 0, 255).astype(np.uint8)
SMOOTH = np.clip(np.add.outer(np.arange(64) * 2, np.arange(80) * 1.5), 0, 255).astype(np.uint8)
CONST = np.full((64, 80), 77, np.uint8)


def test_constant_image():
    assert fm.entropy(CONST) == 0 and fm.spatial_frequency(CONST) == 0
    assert fm.standard_deviation(CONST) == 0 and fm.average_gradient(CONST) == 0


def test_entropy_of_uniform_histogram_is_8_bits():
    img = np.arange(256, dtype=np.uint8).repeat(4).reshape(32, 32)
    assert fm.entropy(img) == pytest.approx(8.0)


def test_mi_with_itself_is_entropy_and_zero_for_independent():
    assert fm.mutual_information(IMG, IMG) == pytest.approx(fm.entropy(IMG))
    assert fm.mutual_information(IMG, CONST) == pytest.approx(0.0, abs=1e-12)


def test_sf_and_ag_analytic():
    ramp = np.tile(np.arange(0, 160, 2, dtype=np.uint8), (64, 1))  # +2 per column, flat rows
    assert fm.spatial_frequency(ramp) == pytest.approx(2.0)
    # sqrt((2^2 + 0)/2) per pixel, summed and divided by (W-1)(H-1)
    assert fm.average_gradient(ramp) == pytest.approx(np.sqrt(2.0) * 64 * 80 / (63 * 79))


def test_ssim_identity_and_symmetry():
    assert ssim(IMG, IMG) == pytest.approx(1.0)
    assert ssim(IMG, SMOOTH) == pytest.approx(ssim(SMOOTH, IMG))
    assert ssim(IMG, SMOOTH) < 0.5


def test_vif_of_source_with_itself_is_one():
    assert fm.vif(IMG, IMG) == pytest.approx(1.0)
    assert fm.vif(SMOOTH, SMOOTH) == pytest.approx(1.0)
    noisy = np.clip(IMG + RNG.normal(0, 30, IMG.shape), 0, 255)
    assert fm.vif(IMG, noisy) < 0.7


def test_qabf_when_fused_equals_a_source_with_all_edges():
    # every edge of F matches A exactly: Q = Qg(1) * Qa(1) wherever A has gradient
    q_max = 0.9994 / (1 + np.exp(-15 * 0.5)) * 0.9879 / (1 + np.exp(-22 * 0.2))
    assert fm.qabf(SMOOTH, SMOOTH, SMOOTH) == pytest.approx(q_max, rel=1e-6)
    black = np.zeros_like(SMOOTH)  # no edges even with the metric's zero padding
    assert fm.qabf(SMOOTH, black, SMOOTH) == pytest.approx(q_max, rel=1e-6)  # B has no edges
    assert fm.qabf(SMOOTH, IMG, black) < 1e-3  # F lost every edge (the sigmoid leaves ~5e-5)


def test_scd_and_bundle():
    vi = np.stack([SMOOTH] * 3, axis=-1)
    m = fm.fusion_metrics(vi, vi, IMG)
    assert set(m) == set(fm.METRICS)
    assert m["SSIM"] == pytest.approx(1.0 + ssim(SMOOTH, IMG))
    assert m["SCD"] == pytest.approx(fm.scd(SMOOTH, IMG, SMOOTH))
    with pytest.raises(ValueError, match="one size"):
        fm.fusion_metrics(vi, vi, IMG[:10])


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baselines_keep_size_and_visible_chroma(name):
    vi = RNG.integers(0, 255, (40, 50, 3), dtype=np.uint8)
    ir = RNG.integers(0, 255, (40, 50), dtype=np.uint8)
    out = BASELINES[name](vi, ir)
    assert out.shape == vi.shape and out.dtype == np.uint8
    gray = np.stack([ir] * 3, axis=-1)
    # fusing a gray visible image with itself returns it (up to rounding)
    assert np.abs(BASELINES[name](gray, ir).astype(int) - gray).max() <= 1
    with pytest.raises(ValueError, match="differ in size"):
        BASELINES[name](vi, ir[:20])
