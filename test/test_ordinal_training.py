"""The ranking term on real frames: its sign, the frames and points it samples, and that a
network trained on it orders the labelled pairs better."""
import csv

import numpy as np
import pytest
import torch

from ldf_ros.models.depth_net import DepthNet, DepthNetConfig
from ldf_ros.training.ordinal import OrdinalFrames, ordinal_loss


def test_the_wrong_order_costs_more_and_pulls_the_right_way():
    depth = torch.full((1, 1, 8, 8), 10.0)
    depth[..., :, :4] = 5.0                                     # left half nearer
    pts = torch.tensor([[-0.5, 0.0, 0.5, 0.0]])                 # a on the left, b on the right
    right = ordinal_loss(depth, [(pts, torch.tensor([True]))])
    d = depth.clone().requires_grad_(True)
    wrong = ordinal_loss(d, [(pts, torch.tensor([False]))])
    assert wrong > 5 * right
    wrong.backward()
    assert d.grad[..., :, :4].sum() < 0 < d.grad[..., :, 4:].sum()   # descent pushes the left farther, the right nearer


@pytest.fixture
def labelled(roadscene, tmp_path):
    """Rows of the shipped ordinal set on two RoadScene frames, as a training file."""
    from ldf_ros.config import package_root
    rows = list(csv.DictReader(open(package_root() / "data" / "ordinal_depth" / "pairs.csv")))
    images = sorted({r["image"] for r in rows if r["image"].startswith("roadscene/")})[:2]
    path = tmp_path / "pairs.csv"
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(r for r in rows if r["image"] in images)
    return path, roadscene.parent


@pytest.mark.parametrize("modality", ["visible", "thermal"])
def test_frames_are_resized_whole_and_mirror_with_their_points(labelled, modality):
    path, root = labelled
    frames = OrdinalFrames(path, root, modality, 64, 48)
    assert len(frames) == 2 and frames.pair_count > 4
    x, labels = frames.batch(16, np.random.default_rng(0))
    assert x.shape == (16, 3 if modality == "visible" else 1, 48, 64) and 0 <= x.min() and x.max() <= 1
    originals = {frames.items[i][0].tobytes(): frames.items[i][1] for i in range(2)}
    mirrored = 0
    for img, (pts, _) in zip(x.numpy(), labels):
        if img.tobytes() not in originals:                         # a mirrored frame: its points mirrored too
            mirrored += 1
            flipped = img[..., ::-1].copy().tobytes()
            assert np.allclose(originals[flipped][:, [0, 2]], -pts[:, [0, 2]].numpy())
    assert 0 < mirrored < 16
    with pytest.raises(ValueError, match="visible or thermal"):
        OrdinalFrames(path, root, "rgb_thermal", 64, 48)


def test_a_network_trained_on_the_ranking_term_orders_the_pairs(labelled):
    from ldf_ros.training.ordinal import ordinal_loss
    path, root = labelled
    torch.manual_seed(0)
    net = DepthNet(DepthNetConfig(modality="visible", widths=(8, 8, 8, 8, 8), input_width=64, input_height=64))
    frames = OrdinalFrames(path, root, "visible", 64, 64)
    x, labels = frames.batch(2, np.random.default_rng(1))

    def wrong_share():
        with torch.no_grad():
            d = torch.log(net(x)["depth"])
        wrong = 0
        for i, (pts, a_nearer) in enumerate(labels):
            g = torch.nn.functional.grid_sample(d[i:i + 1], pts.view(1, -1, 2, 2), align_corners=False)[0, 0]
            wrong += int(((g[:, 0] < g[:, 1]) != a_nearer).sum())
        return wrong / sum(len(p) for p, _ in labels)

    before = wrong_share()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(60):
        loss = ordinal_loss(net(x)["depth"], labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert wrong_share() < min(before, 0.5) - 0.1, (before, wrong_share())
