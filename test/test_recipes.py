"""Recipes: every shipped model file has one, every recipe checks against the training
configs, and a tiny recipe runs its stages in order (cycles resumed in one run folder)."""
from pathlib import Path

import pytest

from ldf_ros.config import ConfigError
from ldf_ros.training.recipe import load_recipe, plan, run_recipe

REPO = Path(__file__).resolve().parent.parent
RECIPES = sorted((REPO / "config" / "recipes").glob("*.yaml"))


def test_every_shipped_model_has_a_valid_recipe():
    shipped = {p.name for p in (REPO / "models").glob("*.safetensors")}
    recipes = {Path(load_recipe(r).ships).name: r for r in RECIPES}
    assert shipped <= set(recipes), shipped - set(recipes)
    for r in RECIPES:
        runs = plan(load_recipe(r), "out/x")
        assert runs and all("out" in args for _, _, args in runs)


@pytest.mark.parametrize("text,reason", [
    ("stages: [{name: a, train: dance}]", "train must be one of"),
    ("stages: [{name: a, train: depth, args: {modality: sonar}}]", "modality"),
    ("stages: [{name: a, train: depth, args: {init: previous}}]", "needs a stage before it"),
    ("stages: [{name: a, train: fusion, args: {teacher: $b}}]", "names no earlier stage"),
    ("stages: [{name: a, train: depth, steps: [4000, 2000]}]", "increasing"),
    ("stages: [{name: a, train: depth, args: {no_such: 1}}]", "no_such"),
])
def test_bad_recipes_are_refused_with_the_reason(tmp_path, text, reason):
    f = tmp_path / "r.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=reason):
        load_recipe(f)


def test_a_tiny_recipe_runs_its_cycles_and_references(tmp_path, roadscene):
    f = tmp_path / "tiny.yaml"
    f.write_text(f"ships: ''\nstages:\n"
                 f"  - {{name: dn, train: diffusion, args: {{data: {roadscene / 'train'}, base: 4, crop: 16, batch_size: 1,"
                 f" checkpoint_every: 1}}, steps: [1, 2]}}\n"
                 f"  - {{name: dn2, train: diffusion, args: {{data: {roadscene / 'train'}, base: 4, crop: 16, batch_size: 1,"
                 f" checkpoint_every: 1}}, steps: [1]}}\n")
    final = run_recipe(load_recipe(f), tmp_path / "runs", threads=1)
    assert final == tmp_path / "runs" / "dn2" / "model.safetensors" and final.is_file()
    assert (tmp_path / "runs" / "dn" / "model.safetensors").is_file()
