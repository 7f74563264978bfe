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


def test_mean_ranks_average_over_metrics_and_share_ties():
    from ldf_ros.evaluation.fusion_metrics import METRICS
    from ldf_ros.evaluation.fusion_report import mean_ranks

    summary = {"a": {m: 2.0 for m in METRICS}, "b": {m: 1.0 for m in METRICS}, "c": {m: 1.0 for m in METRICS}}
    summary["c"]["EN"] = 3.0                      # c best on one metric, tied last with b on the rest
    ranks = mean_ranks(summary)
    assert ranks["a"] == pytest.approx((2 + 8 * 1) / 9)
    assert ranks["b"] == pytest.approx((3 + 8 * 2.5) / 9)
    assert ranks["c"] == pytest.approx((1 + 8 * 2.5) / 9)


def test_domains_and_reference_outputs(roadscene, tmp_path, capsys):
    """Two named domains (a name glob, gray visible images) and another method known only by
    its output folder: its metrics equal those of the function that wrote it, and bad
    references are named."""
    import cv2

    from ldf_ros.ops.color import is_gray

    data = tmp_path / "data"
    for sub in ("vi", "ir"):
        (data / sub).mkdir(parents=True)
    for i, p in enumerate(sorted((roadscene / "val" / "vi").iterdir())[:4]):
        vi = cv2.imread(str(p))
        if i >= 2:
            vi = cv2.cvtColor(cv2.cvtColor(vi, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        cv2.imwrite(str(data / "vi" / p.name), vi)
        shutil.copy(roadscene / "val" / "ir" / p.name, data / "ir" / p.name)
    folder = PairedFolder.from_root(data)
    assert [is_gray(folder.load(i)[0]) for i in range(4)] == [False, False, True, True]
    refs = tmp_path / "refs"
    refs.mkdir()
    for i, pair in enumerate(folder.pairs):
        cv2.imwrite(str(refs / f"{pair.name}.png"), cv2.cvtColor(BASELINES["max"](*folder.load(i)), cv2.COLOR_RGB2BGR))
    first = folder.pairs[0].name
    (tmp_path / "domains.yaml").write_text(f"color: {{root: {data}, visible: color}}\n"
                                           f"gray: {{root: {data}, visible: gray}}\n"
                                           f"first: {{root: {data}, names: '{first}'}}\n")
    out = tmp_path / "report"
    assert main(["eval", "fusion", "--domains", str(tmp_path / "domains.yaml"), "--methods", "average,max",
                 "--reference", f"copy_of_max={refs}", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| color | gray | first | mean |" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"color", "gray", "first"}
    for domain in summary.values():
        for metric, value in domain["max"].items():
            assert domain["copy_of_max"][metric] == pytest.approx(value, rel=1e-6), metric
    assert (out / "gray" / "panel_worst.png").is_file() and "## gray (2 pairs)" in (out / "report.md").read_text()

    # outputs kept in one folder per domain, each holding only its domain's images
    by_domain = tmp_path / "by_domain"
    for domain, pairs in (("color", folder.pairs[:2]), ("gray", folder.pairs[2:]), ("first", folder.pairs[:1])):
        (by_domain / domain).mkdir(parents=True)
        for pair in pairs:
            shutil.copy(refs / f"{pair.name}.png", by_domain / domain / f"{pair.name}.png")
    assert main(["eval", "fusion", "--domains", str(tmp_path / "domains.yaml"), "--methods", "",
                 "--reference", f"copy_of_max={by_domain}", "--out", str(tmp_path / "report2")]) == 0
    by = json.loads((tmp_path / "report2" / "summary.json").read_text())
    assert by["gray"]["copy_of_max"] == pytest.approx(summary["gray"]["copy_of_max"])
    assert main(["eval", "fusion", "--domains", str(tmp_path / "domains.yaml"), "--only", "gray", "--methods", "",
                 "--reference", f"copy_of_max={by_domain}", "--out", str(tmp_path / "report3")]) == 0
    assert set(json.loads((tmp_path / "report3" / "summary.json").read_text())) == {"gray"}
    capsys.readouterr()
    assert main(["eval", "fusion", "--domains", str(tmp_path / "domains.yaml"), "--only", "night", "--methods", "",
                 "--reference", f"copy_of_max={by_domain}", "--out", str(tmp_path / "report3")]) == 2
    assert "no domain night" in capsys.readouterr().err

    (refs / f"{first}.png").unlink()
    assert main(["eval", "fusion", "--domains", str(tmp_path / "domains.yaml"), "--methods", "",
                 "--reference", f"copy_of_max={refs}", "--out", str(out)]) == 2
    assert f"no image named {first}" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text(f"x: {{root: {data}, names: 'nothing*'}}\n")
    assert main(["eval", "fusion", "--domains", str(tmp_path / "bad.yaml"), "--out", str(out)]) == 2
    assert "no pair matches" in capsys.readouterr().err


def test_directive_report_scores_what_each_directive_promises(roadscene, tmp_path):
    """A fake fusion that brightens warm pixels when asked and returns the visible image when
    asked to keep it: the table shows both moves, and a panel per domain is written."""
    import numpy as np

    from ldf_ros.evaluation.directive_report import evaluate_directives, promise_measures

    def fuse(vi, ir, directive):
        base = BASELINES["average"](vi, ir)
        if directive == "emphasize warm objects":
            return np.clip(base.astype(int) + (ir > 150)[..., None] * 60, 0, 255).astype(np.uint8)
        return vi.copy() if directive == "keep visible colors" else base

    folder = PairedFolder.from_root(roadscene / "val").select("FLIR_0[0-4]*")
    table = evaluate_directives({"val": folder}, fuse, tmp_path, progress=False)
    rows = {line.split("|")[2].strip(): line.split("|") for line in table.splitlines()[2:]}
    assert float(rows["emphasize warm objects"][3]) > float(rows["(none)"][3]) + 5
    assert float(rows["keep visible colors"][4]) == 0.0 < float(rows["(none)"][4])
    assert (tmp_path / "directives_val.png").is_file()
    vi, ir = folder.load(0)
    assert np.isnan(promise_measures(vi, vi, np.zeros_like(ir))["warm contrast"])   # no warm objects: no score
