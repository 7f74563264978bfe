"""`ldf-ros eval fusion` end to end, and the metric conventions against published reference values."""
import json
import shutil

import pytest

from ldf_ros.cli import main
from ldf_ros.data.paired import PairedFolder
from ldf_ros.evaluation.fusion_report import evaluate_folder, summarize
from ldf_ros.runtime.classical_fusion import BASELINES

# Values measured on RoadScene val (23 pairs) with the field's evaluation code.
REFERENCE = {
    "max": dict(EN=7.038, SD=41.74, SF=12.17, AG=4.331, MI=7.258, SCD=1.358, VIF=0.779, Qabf=0.552, SSIM=1.334),
    "average": dict(EN=6.782, SD=30.52, SF=8.636, AG=3.418, MI=2.821, SCD=1.411, VIF=0.548, Qabf=0.381, SSIM=1.431),
}


def test_metrics_reproduce_reference_values(roadscene):
    folder = PairedFolder.from_root(roadscene / "val")
    summary = summarize(evaluate_folder(folder, {m: BASELINES[m] for m in REFERENCE}, progress=False))
    for method, ref in REFERENCE.items():
        for metric, value in ref.items():
            assert summary[method][metric] == pytest.approx(value, rel=5e-3), (method, metric)


def test_cli_writes_report_and_panels(roadscene, tmp_path, capsys):
    data = tmp_path / "data"
    for sub in ("vi", "ir"):
        (data / sub).mkdir(parents=True)
        for p in sorted((roadscene / "val" / sub).iterdir())[:3]:
            shutil.copy(p, data / sub / p.name)
    out = tmp_path / "report"
    assert main(["eval", "fusion", "--vi", str(data / "vi"), "--ir", str(data / "ir"), "--out", str(out)]) == 0
    assert "| laplacian |" in capsys.readouterr().out
    for name in ("report.md", "metrics.csv", "summary.json", "panel_worst.png", "panel_median.png", "panel_best.png"):
        assert (out / name).is_file(), name
    assert set(json.loads((out / "summary.json").read_text())) == {"average", "max", "laplacian"}
    assert len((out / "metrics.csv").read_text().strip().splitlines()) == 1 + 3 * 3

    # bad inputs: unpaired name, non-image file, empty folder, unknown method -> message, exit 2
    (data / "vi" / "extra.png").write_bytes((data / "vi" / sorted(p.name for p in (data / "vi").iterdir())[0]).read_bytes())
    (data / "ir" / "readme.txt").write_text("x")
    assert main(["eval", "fusion", "--vi", str(data / "vi"), "--ir", str(data / "ir"), "--out", str(out)]) == 2
    assert "extra.png" in capsys.readouterr().err
    empty = tmp_path / "empty"
    (empty / "vi").mkdir(parents=True)
    (empty / "ir").mkdir()
    assert main(["eval", "fusion", "--vi", str(empty / "vi"), "--ir", str(empty / "ir")]) == 2
    assert "no image pairs" in capsys.readouterr().err
    assert main(["eval", "fusion", "--vi", str(data / "vi"), "--ir", str(data / "ir"), "--methods", "magic"]) == 2
    assert "unknown method 'magic'" in capsys.readouterr().err
