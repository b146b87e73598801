"""The one device rule for every torch model: "auto" is the first CUDA GPU when there is
one, else the CPU; anything else as torch reads it, with a clear error for a CUDA device
on a machine without one."""

from __future__ import annotations

import torch


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    if spec is None or spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {spec!r} asked for, but torch sees no CUDA GPU (use device='auto' or 'cpu')")
    return device
