"""Dataset loaders: RoadScene pairing, problems reported by file name, synthetic folders."""
import cv2
import numpy as np
import pytest

from ldf_ros.data.paired import DatasetError, PairedFolder, find_pair_dirs, random_crop_flip
from ldf_ros.data.synthetic import synthetic_sequences
from ldf_ros.ops.color import rgb_to_ycbcr, ycbcr_to_rgb


def test_roadscene_pairs(roadscene):
    train = PairedFolder.from_root(roadscene / "train")
    val = PairedFolder.from_root(roadscene / "val")
    assert (len(train), len(val)) == (142, 23)
    assert not set(p.name for p in train.pairs) & set(p.name for p in val.pairs)
    for i in (0, len(val) - 1):
        pair = val.pairs[i]
        assert pair.visible.stem == pair.infrared.stem == pair.name
        vi, ir = val.load(i)
        assert vi.ndim == 3 and vi.shape[2] == 3 and ir.ndim == 2 and vi.shape[:2] == ir.shape


def write_png(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), arr)


def test_problems_are_named(tmp_path):
    write_png(tmp_path / "vi" / "a.png", np.zeros((8, 8, 3), np.uint8))
    write_png(tmp_path / "ir" / "a.png", np.zeros((8, 8), np.uint8))
    write_png(tmp_path / "vi" / "b.png", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "ir" / "notes.txt").write_text("not an image")
    with pytest.raises(DatasetError, match="b.png"):
        PairedFolder.from_root(tmp_path)
    folder = PairedFolder.from_root(tmp_path, strict=False)
    assert len(folder) == 1 and folder.unpaired == [str(tmp_path / "vi" / "b.png")]
    write_png(tmp_path / "ir" / "a.png", np.zeros((9, 8), np.uint8))
    with pytest.raises(DatasetError, match="a: visible 8x8 and infrared 8x9"):
        folder.load(0)
    (tmp_path / "vi" / "c.png").write_bytes(b"garbage")
    (tmp_path / "ir" / "c.png").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="c.png: not a readable image"):
        PairedFolder.from_root(tmp_path, strict=False).load(1)
    with pytest.raises(DatasetError, match="no visible/infrared folder pair"):
        find_pair_dirs(tmp_path / "vi")


def test_crop_flip_keeps_alignment():
    rng = np.random.default_rng(0)
    vi = rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)
    ir = vi[..., 0].copy()
    for _ in range(10):
        a, b = random_crop_flip(vi, ir, 32, rng)
        assert a.shape == (32, 32, 3) and b.shape == (32, 32)
        np.testing.assert_array_equal(a[..., 0], b)
    a, b = random_crop_flip(vi[:20], ir[:20], 32, rng)  # smaller than the crop: reflected padding
    assert a.shape == (32, 32, 3)


def test_ycbcr_round_trip():
    rgb = np.random.default_rng(1).uniform(0, 255, (10, 10, 3))
    np.testing.assert_allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb, atol=1e-2)


def test_synth_cli_folder_reads_back(tmp_path):
    from ldf_ros.cli import main
    assert main(["synth", "--out", str(tmp_path), "--frames", "2", "--conditions", "day", "--seed", "4"]) == 0
    (seq,) = synthetic_sequences(tmp_path)
    assert seq.condition == "day" and seq.indices("rgb") == [0, 1]
    f = seq.frame("rgb", 1)
    assert f.image.shape == (512, 640, 3) and f.depth.dtype == np.float32 and f.classes.shape == (512, 640)
    reg = seq.frame("thermal_registered", 1)
    assert reg.image.dtype == np.uint16 and reg.image.shape == (512, 640)
    np.testing.assert_array_equal(reg.depth, f.depth)
    assert seq.frame("thermal", 0).image.shape == (256, 320)
    assert np.nanmin(f.depth) > 0 and np.isnan(f.depth).any()  # sky has no depth
    assert main(["synth", "--out", str(tmp_path), "--conditions", "snow"]) == 2
