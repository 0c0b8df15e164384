"""The one device switch: CUDA when present, CPU otherwise, through the same code path."""

from __future__ import annotations

import os

import torch

#: Environment variable that overrides the automatic choice, e.g. ``cpu`` or ``cuda:1``.
DEVICE_ENV = "LOUPE_DEVICE"


def pick_device(prefer: str | torch.device | None = None) -> torch.device:
    """Return the device learning code should run on.

    ``prefer`` may be ``None``/``"auto"`` (CUDA when available, else CPU), ``"cpu"``,
    ``"cuda"`` or ``"cuda:N"``. When ``prefer`` is not given, ``$LOUPE_DEVICE`` is honoured.
    Asking for CUDA explicitly on a machine without it raises, because silently training on
    the CPU instead would turn a minutes-long job into hours without anyone noticing.

    CUDA is only queried here, never at import time, so a forked worker that imports ``ml``
    stays free of CUDA state.
    """
    if isinstance(prefer, torch.device):
        choice = str(prefer)
    else:
        choice = (prefer or os.environ.get(DEVICE_ENV) or "auto").strip().lower()
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(choice)
    except RuntimeError as exc:
        raise ValueError(f"unsupported device {choice!r}; use 'auto', 'cpu' or 'cuda[:N]'") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {choice!r} was requested but CUDA is not available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device {choice!r} was requested but only "
                f"{torch.cuda.device_count()} CUDA device(s) exist"
            )
    elif device.type != "cpu":
        raise ValueError(f"unsupported device {choice!r}; use 'auto', 'cpu' or 'cuda[:N]'")
    return device


def describe_device(device: torch.device) -> str:
    """A human-readable name for ``device`` (GPU model, or CPU with its thread count)."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return f"cpu ({torch.get_num_threads()} threads)"
