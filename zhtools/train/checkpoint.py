"""Atomic checkpoints in safetensors + JSON (no pickle).

A nested state (dicts/lists of tensors, numbers, strings) is split into a flat tensor dict
(saved with safetensors) and a JSON skeleton referencing the tensors by key. A checkpoint is a
folder written to a temporary name, fsynced, then swapped in with ``os.replace``; a crash at any
moment leaves either the old or the new checkpoint complete.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

_TENSOR = "__tensor__"
_TUPLE = "__tuple__"


def flatten_state(obj: Any, tensors: dict[str, torch.Tensor], prefix: str = "t") -> Any:
    """Replace every tensor in ``obj`` by a reference, filling ``tensors``."""
    if isinstance(obj, torch.Tensor):
        key = f"{prefix}{len(tensors)}"
        tensors[key] = obj.detach().cpu().clone().contiguous()
        return {_TENSOR: key}
    if isinstance(obj, dict):
        if any(not isinstance(k, (str, int)) for k in obj):
            raise TypeError("state dict keys must be str or int")
        return {"__dict__": [[k, flatten_state(v, tensors, prefix)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {_TUPLE: [flatten_state(v, tensors, prefix) for v in obj]}
    if isinstance(obj, list):
        return [flatten_state(v, tensors, prefix) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot checkpoint value of type {type(obj).__name__}")


def unflatten_state(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if _TENSOR in obj:
            return tensors[obj[_TENSOR]]
        if _TUPLE in obj:
            return tuple(unflatten_state(v, tensors) for v in obj[_TUPLE])
        return {k: unflatten_state(v, tensors) for k, v in obj["__dict__"]}
    if isinstance(obj, list):
        return [unflatten_state(v, tensors) for v in obj]
    return obj


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Atomically write ``state`` (nested, tensors anywhere) to folder ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    tensors: dict[str, torch.Tensor] = {}
    skeleton = flatten_state(state, tensors)
    save_file(tensors, str(tmp / "state.safetensors"))
    with open(tmp / "state.json", "w", encoding="utf-8") as f:
        json.dump(skeleton, f)
        f.flush()
        os.fsync(f.fileno())
    with open(tmp / "state.safetensors", "rb+") as f:
        os.fsync(f.fileno())
    _fsync_dir(tmp)
    old = path.with_name(path.name + ".old")
    if path.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(path, old)
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    if old.exists():
        shutil.rmtree(old)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any] | None:
    """Load a checkpoint folder (falls back to ``.old`` if a swap was interrupted)."""
    path = Path(path)
    for p in (path, path.with_name(path.name + ".old")):
        if (p / "state.json").exists() and (p / "state.safetensors").exists():
            tensors = load_file(str(p / "state.safetensors"))
            skeleton = json.loads((p / "state.json").read_text(encoding="utf-8"))
            return unflatten_state(skeleton, tensors)
    return None


def average_model_states(paths: list[str | os.PathLike]) -> dict[str, torch.Tensor]:
    """Checkpoint averaging: the element-wise mean of the ``model`` weights saved in several
    checkpoints of one architecture (e.g. the ends of successive run segments of one training
    run). Integer buffers are taken from the first checkpoint."""
    if not paths:
        raise ValueError("average_model_states needs at least one checkpoint")
    states = []
    for p in paths:
        ck = load_checkpoint(p)
        if ck is None or "model" not in ck:
            raise FileNotFoundError(f"{p}: no checkpoint with model weights")
        states.append(ck["model"])
    keys = set(states[0])
    for p, s in zip(paths, states):
        if set(s) != keys:
            raise ValueError(f"{p}: weights do not match those of {paths[0]}")
    out = {}
    for k, v in states[0].items():
        out[k] = (torch.stack([s[k].float() for s in states]).mean(0).to(v.dtype)
                  if v.is_floating_point() else v)
    return out
