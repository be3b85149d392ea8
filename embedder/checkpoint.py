"""The resumable training checkpoint folder (``out_dir/last/``).

    config.json + weights.safetensors   the model, loadable by load_model
    state.safetensors                   loss parameters, optimizer tensors, torch RNG
    state.json                          loop state, optimizer groups, scheduler,
                                        grad scaler, sampler, numpy/python RNG

No pickles: tensors go to safetensors, everything else to JSON. The folder is
written beside the old one and swapped in, so a crash leaves the previous one.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from safetensors.torch import load_model as load_safetensors_model
from torch import nn

from embedder.model import WEIGHTS_FILE, EmbeddingModel, save_model
from index.errors import ModelError

STATE_TENSORS = "state.safetensors"
STATE_JSON = "state.json"


def rng_snapshot() -> dict[str, Any]:
    """The process RNG states (torch CPU, numpy global, python) as a dict."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }


def restore_rng(snapshot: dict[str, Any]) -> None:
    """Inverse of :func:`rng_snapshot`."""
    torch.set_rng_state(snapshot["torch"])
    name, keys, *rest = snapshot["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    version, internal, gauss = snapshot["python"]
    random.setstate((version, tuple(internal), gauss))


def _split_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, scalars = {}, {}
    for pid, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _join_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for pid, values in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    folder: Path,
    *,
    model: EmbeddingModel,
    loss: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler,
    loop_state: dict[str, Any],
    rng: dict[str, Any],
) -> None:
    """Write the resumable state to ``folder`` atomically (temp folder + swap)."""
    tmp = folder.with_name(folder.name + ".tmp")
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(model, tmp)
    optim_tensors, optim_meta = _split_optimizer(optimizer.state_dict())
    tensors = {f"loss.{k}": v.detach().cpu().contiguous() for k, v in loss.state_dict().items()}
    tensors.update(optim_tensors)
    tensors["rng.torch"] = rng["torch"]
    save_file(tensors, str(tmp / STATE_TENSORS))
    meta = {
        "loop": loop_state,
        "optimizer": optim_meta,
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": {"numpy": rng["numpy"], "python": rng["python"]},
    }
    (tmp / STATE_JSON).write_text(json.dumps(meta) + "\n", encoding="utf-8")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def read_loop_state(folder: Path) -> dict[str, Any]:
    """The loop state (epoch, step, config, history...) of a checkpoint, tensors untouched.

    Raises:
        ModelError: no readable ``state.json`` in ``folder``.
    """
    try:
        return json.loads((folder / STATE_JSON).read_text(encoding="utf-8"))["loop"]
    except FileNotFoundError:
        raise ModelError(f"nothing to resume: {folder} has no {STATE_JSON}") from None
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"cannot resume from {folder}: unreadable {STATE_JSON} ({exc})") from None


def load_checkpoint(
    folder: Path,
    *,
    model: EmbeddingModel,
    loss: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Restore everything :func:`save_checkpoint` wrote into the given objects.

    Returns:
        ``(loop_state, rng_snapshot)``.
    Raises:
        ModelError: missing or unreadable files, or state that does not fit.
    """
    read_loop_state(folder)
    try:
        meta = json.loads((folder / STATE_JSON).read_text(encoding="utf-8"))
        tensors = load_file(str(folder / STATE_TENSORS))
        device = next(model.parameters()).device
        load_safetensors_model(model, str(folder / WEIGHTS_FILE), strict=True, device=str(device))
        loss.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("loss.")})
        optimizer.load_state_dict(_join_optimizer(tensors, meta["optimizer"]))
        scheduler.load_state_dict(meta["scheduler"])
        scaler.load_state_dict(meta["scaler"])
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - any mismatch means the checkpoint is unusable
        raise ModelError(f"cannot resume from {folder}: {str(exc).splitlines()[0]}") from None
    rng = {"torch": tensors["rng.torch"], **meta["rng"]}
    return meta["loop"], rng
