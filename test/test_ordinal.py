"""Ordinal depth on real images: the pairs file, WHDR and its splits, panels, the drawing command."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from ldf_ros.evaluation.ordinal import (PRIOR, OrdinalPair, draw_sheets, evaluate_ordinal, judge, load_pairs,
                                        predicted_nearer, prior_depth, whdr_summary)

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "data" / "ordinal_depth" / "pairs.csv"
DATASETS = REPO.parent / "shared" / "datasets"
HEADER = "image,condition,category,xa,ya,xb,yb,nearer,note\n"


def _folder(tmp_path):
    """Two 40x60 'scenes' with vi/ and ir/ partners."""
    for name in ("a.png", "b.png"):
        for sub in ("vi", "ir"):
            (tmp_path / "set" / sub).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(tmp_path / "set" / sub / name), np.full((40, 60, 3) if sub == "vi" else (40, 60), 90, np.uint8))
    csv = tmp_path / "pairs.csv"
    csv.write_text(HEADER
                   + "set/vi/a.png,day,road,30,35,30,5,a,road near vs far\n"      # prior right
                   + "set/vi/a.png,day,object,10,10,50,30,a,pole vs road\n"       # prior wrong
                   + "set/vi/b.png,night,object,5,20,55,20,b,car vs wall\n")
    return tmp_path / "set", csv


def test_whdr_counts_disagreements_per_split_and_the_prior(tmp_path):
    root, csv = _folder(tmp_path)
    pairs = load_pairs(csv)
    x = np.arange(60, dtype=np.float32)

    def depth_fn(rgb, ir):      # depth grows to the left: the right point is always nearer
        return {"net": np.repeat((100 - x)[None], 40, axis=0)}

    result = evaluate_ordinal(pairs, tmp_path, depth_fn, tmp_path / "out", panel_method="net", worst=2)
    s = result["summary"]
    # net: pair 0 (same x) ties -> unanswered, wrong; pair 1 says b (x=50) nearer, wrong; pair 2 right
    assert s["net"]["all"] == {"whdr": pytest.approx(2 / 3), "pairs": 3, "answered": 2, "whdr_answered": 0.5}
    assert s["net"]["night"]["whdr"] == 0.0 and s["net"]["road"]["whdr"] == 1.0
    # prior: lower is nearer; pair 0 right (y 35 > 5), pair 1 wrong (y 10 < 30), pair 2 tie
    assert s[PRIOR]["all"]["whdr"] == pytest.approx(2 / 3) and s[PRIOR]["road"]["whdr"] == 0.0
    assert (tmp_path / "out" / "worst_0.png").is_file() and (tmp_path / "out" / "report.md").is_file()
    assert result["worst"][0]["image"] == "set/vi/a.png"


def test_a_perfect_depth_map_scores_zero():
    pairs = [OrdinalPair("i", "day", "object", (1, 1), (8, 8), "b"), OrdinalPair("i", "night", "road", (2, 9), (2, 1), "a")]
    depth = np.full((10, 10), 50.0)
    depth[6:10, 6:10] = 1.0                          # near surfaces around (8, 8) and (2, 9)
    depth[6:10, 0:5] = 1.0
    assert [predicted_nearer(depth, p) for p in pairs] == ["b", "a"]
    s = whdr_summary(judge({"perfect": depth, PRIOR: prior_depth((10, 10))}, pairs))
    assert s["perfect"]["all"]["whdr"] == 0.0 and s[PRIOR]["all"]["whdr"] == 0.0   # both lower points nearer


@pytest.mark.parametrize("row,reason", [
    ("x.png,dusk,road,1,2,3,4,a,", "condition 'dusk'"),
    ("x.png,day,sky,1,2,3,4,a,", "category 'sky'"),
    ("x.png,day,road,1,2,3,4,c,", "nearer 'c'"),
    ("x.png,day,road,1,2.5,3,4,a,", "integers"),
    ("x.png,day,road,1,2,1,2,a,", "distinct"),
])
def test_bad_rows_are_named_with_their_line(tmp_path, row, reason):
    f = tmp_path / "p.csv"
    f.write_text(HEADER + "x.png,day,road,1,2,3,4,a,ok\n" + row + "\n")
    with pytest.raises(ValueError, match=rf"p.csv:3: .*{reason}"):
        load_pairs(f)


def test_points_outside_the_image_are_refused(tmp_path):
    root, csv = _folder(tmp_path)
    csv.write_text(HEADER + "set/vi/a.png,day,road,60,35,30,5,a,x beyond the width\n")
    with pytest.raises(ValueError, match="outside the 60x40 image"):
        draw_sheets(load_pairs(csv), tmp_path, tmp_path / "sheets")


def test_draw_sheets_writes_one_image_per_annotated_image(tmp_path):
    root, csv = _folder(tmp_path)
    written = draw_sheets(load_pairs(csv), tmp_path, tmp_path / "sheets")
    assert len(written) == 2 and all(p.is_file() for p in written)
    assert cv2.imread(str(written[0])).shape[1] == 960          # small images are scaled up to read


def test_the_shipped_pairs_meet_the_protocol():
    if not SHIPPED.is_file():
        pytest.skip("no shipped pairs file")
    pairs = load_pairs(SHIPPED)
    images = {p.image for p in pairs}
    assert len(pairs) >= 400 and len(images) >= 50
    assert sum(p.category == "object" for p in pairs) >= len(pairs) / 2
    assert {p.condition for p in pairs} == {"day", "night"}
    assert len({(p.image, frozenset((p.a, p.b))) for p in pairs}) == len(pairs)        # no duplicates
    if DATASETS.is_dir():
        from ldf_ros.evaluation.ordinal import by_image, check_in_bounds, read_pair_images
        for image, mine in by_image(pairs).items():
            check_in_bounds(mine, read_pair_images(DATASETS, image)[0].shape[:2])
