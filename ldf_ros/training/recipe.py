"""How a shipped model is trained, as data: one recipe YAML per file in `models/`.

A recipe names the file it ships and a list of stages. Each stage is one training command
(`depth`, `fusion` or `diffusion`) with the arguments of its training config
(`ldf_ros.config.*TrainConfig`); `steps` as a list runs cosine cycles resumed from each other
(2000, then 4000, ... in the same run folder), `init: previous` starts from the stage before,
and `$name` in a value is that stage's checkpoint (a teacher trained earlier in the recipe,
say). `ldf-ros train recipe FILE` runs the stages in order (each resumes where it stopped)
and says where the result is; `--ship` copies it over the shipped file.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ldf_ros.config import (ConfigError, DepthTrainConfig, DiffusionTrainConfig, FusionTrainConfig, build_section,
                            read_yaml)

KINDS = {"depth": DepthTrainConfig, "fusion": FusionTrainConfig, "diffusion": DiffusionTrainConfig}


@dataclass(frozen=True)
class Stage:
    name: str
    kind: str
    args: dict = field(default_factory=dict)
    steps: tuple[int, ...] = ()
    config: str | None = None             # a training YAML the args override (e.g. config/train_fusion.yaml)


@dataclass(frozen=True)
class Recipe:
    ships: str
    stages: tuple[Stage, ...]
    path: str = ""


def load_recipe(path: str | Path) -> Recipe:
    """Read and check a recipe (every stage's arguments against its training config)."""
    path = Path(path)
    data = read_yaml(path)
    if not isinstance(data, dict) or set(data) - {"ships", "stages", "about"} or "stages" not in data:
        raise ConfigError(f"{path}: a recipe has 'ships', 'stages' (and optionally 'about')")
    stages, names = [], set()
    for i, raw in enumerate(data["stages"]):
        where = f"{path}: stage {i}"
        if not isinstance(raw, dict) or set(raw) - {"name", "train", "args", "steps", "config"}:
            raise ConfigError(f"{where}: expected name, train, args, steps, config")
        name, kind = raw.get("name"), raw.get("train")
        if not name or name in names:
            raise ConfigError(f"{where}: every stage needs a unique name")
        if kind not in KINDS:
            raise ConfigError(f"{where} ({name}): train must be one of {', '.join(KINDS)}")
        steps = raw.get("steps", [])
        steps = tuple(steps if isinstance(steps, list) else [steps])
        if not all(isinstance(s, int) and s > 0 for s in steps) or list(steps) != sorted(steps):
            raise ConfigError(f"{where} ({name}): steps must be increasing positive integers")
        stage = Stage(name, kind, dict(raw.get("args") or {}), steps, raw.get("config"))
        _check_args(stage, names, where)
        names.add(name)
        stages.append(stage)
    return Recipe(str(data.get("ships", "")), tuple(stages), str(path))


def _check_args(stage: Stage, earlier: set[str], where: str) -> None:
    """The stage's arguments are keys of its training config with valid values (references to
    earlier stages resolved to placeholders)."""
    args = {k: _placeholder(v, earlier, where) for k, v in stage.args.items()}
    if args.get("init") == "previous":
        if not earlier:
            raise ConfigError(f"{where} ({stage.name}): init: previous needs a stage before it")
        args["init"] = "x"
    args.pop("out", None)
    build_section(f"stage {stage.name}", KINDS[stage.kind], {**args, **({"steps": stage.steps[-1]} if stage.steps else {})})


def _placeholder(value: Any, earlier: set[str], where: str) -> Any:
    if isinstance(value, str) and value.startswith("$"):
        if value[1:] not in earlier:
            raise ConfigError(f"{where}: {value} names no earlier stage")
        return "x"
    return value


def plan(recipe: Recipe, root: str | Path) -> list[tuple[Stage, int | None, dict]]:
    """[(stage, steps of this cycle, training overrides)] in order, paths resolved."""
    root = Path(root)
    out_of = {s.name: root / s.name for s in recipe.stages}
    runs, previous = [], None
    for stage in recipe.stages:
        args = {}
        for k, v in stage.args.items():
            if isinstance(v, str) and v.startswith("$"):
                v = str(out_of[v[1:]] / "model.safetensors")
            elif k == "init" and v == "previous":
                v = str(out_of[previous] / "model.safetensors")
            args[k] = v
        args["out"] = str(out_of[stage.name])
        for steps in stage.steps or (None,):
            runs.append((stage, steps, {**args, **({"steps": steps} if steps else {})}))
        previous = stage.name
    return runs


def describe(runs) -> list[str]:
    """One line per run: what trains, from which YAML, with which overrides."""
    lines = []
    for stage, _, args in runs:
        given = " ".join(f"{k}={v}" for k, v in args.items() if k != "out")
        lines.append(f"[{stage.name}] train {stage.kind} ({stage.config or 'defaults'}) {given} -> {args['out']}")
    return lines


def run_recipe(recipe: Recipe, root: str | Path, dry_run: bool = False, ship: bool = False,
               threads: int | None = None) -> Path:
    """Run every stage (resuming finished ones costs nothing); returns the final checkpoint."""
    from ldf_ros.config import load_section_yaml, resolve_path

    runs = plan(recipe, root)
    for line in describe(runs):
        print(line)
    final = Path(runs[-1][2]["out"]) / "model.safetensors"
    if dry_run:
        return final
    for stage, _, args in runs:
        overrides = {**args, **({"threads": threads} if threads is not None else {})}
        cfg = load_section_yaml(stage.config, stage.kind, KINDS[stage.kind], overrides)
        if stage.kind == "depth":
            from ldf_ros.training.depth import train_depth
            train_depth(cfg)
        elif stage.kind == "fusion":
            from ldf_ros.training.fusion import train_fusion
            train_fusion(cfg)
        else:
            from ldf_ros.training.fusion import train_diffusion
            train_diffusion(cfg)
    if ship and recipe.ships:
        shutil.copyfile(final, resolve_path(recipe.ships))
        print(f"shipped {final} -> {recipe.ships}")
    return final
