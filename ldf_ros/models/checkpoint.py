"""Model checkpoints: safetensors weights plus the model config as JSON metadata.

A checkpoint knows how to build its model (`config`), what it is (`kind`, e.g.
"depth", "denoiser", "fusion") and how it was made (`provenance`). Nothing is unpickled.
Loading is strict: a missing or unexpected tensor is an error, never silently ignored.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or not the kind of model asked for; the message says which."""


def save_checkpoint(path: str | Path, model: nn.Module, kind: str, config: dict, **provenance: Any) -> Path:
    """Write weights and metadata atomically (a crash never leaves a half-written file)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    meta = {"format_version": str(FORMAT_VERSION), "kind": kind, "config": json.dumps(config),
            "provenance": json.dumps(provenance, default=str)}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.chmod(0o644)   # weights are data to share, not secrets
    tmp.replace(path)
    return path


def checkpoint_kind(path: str | Path) -> str:
    """The kind a checkpoint's metadata declares (depth, fusion, denoiser), read without its tensors."""
    from safetensors import SafetensorError, safe_open

    if not Path(path).is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        with safe_open(str(path), framework="pt") as fh:
            return (fh.metadata() or {}).get("kind", "unlabelled")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({exc})") from exc


def read_checkpoint(path: str | Path, kind: str) -> tuple[dict[str, torch.Tensor], dict, dict]:
    """(state_dict, config, provenance) of a checkpoint that must be of `kind`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        from safetensors import safe_open
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({exc})") from exc
    if meta.get("kind") != kind:
        raise CheckpointError(f"{path}: is a {meta.get('kind') or 'unlabelled'!s} checkpoint, expected {kind}")
    try:
        config = json.loads(meta["config"])
        provenance = json.loads(meta.get("provenance", "{}"))
    except (KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: checkpoint metadata is damaged ({exc})") from exc
    return tensors, config, provenance


def load_weights(model: nn.Module, tensors: dict[str, torch.Tensor], path: str | Path) -> nn.Module:
    """Strict load with a readable message on any mismatch."""
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:3]
        raise CheckpointError(f"{path}: weights do not fit the model its config describes: {' '.join(first)}") from exc
    return model


def save_training_state(path: str | Path, state: dict) -> None:
    """Resumable training state (model, optimizer, step, rng) as plain tensors and numbers."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_training_state(path: str | Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means the file cannot be resumed from
        raise CheckpointError(f"{path}: cannot resume from this file ({exc})") from exc
