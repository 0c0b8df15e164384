"""Image augmentations on tensors, written here (no torchvision): flips, small rotations
and shifts, brightness and contrast.

They never rescale: rotations and shifts resample at the same pixel scale, because the size
of a defect can be what decides its class. Each works on one image ``(C, H, W)`` or a batch
``(N, C, H, W)`` with values in [0, 1], drawing one set of parameters per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _as_batch(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if x.dim() == 3:
        return x.unsqueeze(0), True
    if x.dim() == 4:
        return x, False
    raise ValueError(f"expected (C, H, W) or (N, C, H, W), got shape {tuple(x.shape)}")


def affine(
    x: torch.Tensor, angle_degrees: torch.Tensor, shift_pixels: torch.Tensor
) -> torch.Tensor:
    """Rotate each image of a batch about its centre and shift it, at unchanged scale.

    ``angle_degrees`` is ``(N,)`` (positive turns counter-clockwise as displayed),
    ``shift_pixels`` is ``(N, 2)`` as (dx, dy), positive right and down. Borders are
    filled by reflection so no artificial black edge appears that a model could mistake for
    a defect.
    """
    n, _, h, w = x.shape
    a = torch.deg2rad(angle_degrees.to(x.device, torch.float32))
    cos, sin = torch.cos(a), torch.sin(a)
    theta = torch.zeros(n, 2, 3, device=x.device)
    # affine_grid works in [-1, 1] coordinates; the h/w factors keep rotations rigid on
    # non-square images.
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * h / w
    theta[:, 1, 0], theta[:, 1, 1] = sin * w / h, cos
    shift = shift_pixels.to(x.device, torch.float32)
    theta[:, 0, 2] = -2.0 * shift[:, 0] / w
    theta[:, 1, 2] = -2.0 * shift[:, 1] / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


@dataclass
class Augment:
    """A random augmentation policy; call it on an image or a batch.

    Probabilities (``hflip``, ``vflip``, ``quarter_turns``: a turn by 90, 180 or 270
    degrees, square images only) and ranges (``rotate_degrees``: uniform in
    ±value; ``shift_fraction``: of the image size; ``brightness``: added offset in ±value;
    ``contrast``: factor in 1±value). Randomness comes from ``generator`` when given, else
    from ``seed`` (a private generator), else from torch's global RNG, which training seeds,
    so a training run is reproducible either way.
    """

    hflip: float = 0.5
    vflip: float = 0.0
    quarter_turns: float = 0.0
    rotate_degrees: float = 10.0
    shift_fraction: float = 0.05
    brightness: float = 0.1
    contrast: float = 0.1
    seed: int | None = None

    def __post_init__(self) -> None:
        self._generator = (
            torch.Generator().manual_seed(self.seed) if self.seed is not None else None
        )

    def describe(self) -> str:
        """What the policy does to a training image, in words ("nothing" when it is off)."""
        parts = []
        if self.hflip > 0:
            parts.append(f"mirrored left to right with probability {self.hflip:g}")
        if self.vflip > 0:
            parts.append(f"upside down with probability {self.vflip:g}")
        if self.quarter_turns > 0:
            parts.append(
                f"turned a quarter, half or three quarters with probability {self.quarter_turns:g}"
            )
        if self.rotate_degrees > 0:
            parts.append(f"turned by up to {self.rotate_degrees:g} degrees")
        if self.shift_fraction > 0:
            parts.append(f"shifted by up to {100 * self.shift_fraction:g}%")
        if self.brightness > 0:
            parts.append(f"brightness ± {self.brightness:g}")
        if self.contrast > 0:
            parts.append(f"contrast × 1 ± {self.contrast:g}")
        return ", ".join(parts) or "nothing"

    def _uniform(self, n: int, low: float, high: float, gen) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=gen)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Return an augmented copy of ``x`` (same shape and dtype)."""
        gen = generator or self._generator
        batch, single = _as_batch(x)
        batch = batch.float()
        n, _, h, w = batch.shape
        device = batch.device
        if self.hflip > 0:
            flip = (torch.rand(n, generator=gen) < self.hflip).to(device)
            batch = torch.where(flip[:, None, None, None], batch.flip(3), batch)
        if self.vflip > 0:
            flip = (torch.rand(n, generator=gen) < self.vflip).to(device)
            batch = torch.where(flip[:, None, None, None], batch.flip(2), batch)
        if self.quarter_turns > 0 and h == w:
            turn = torch.rand(n, generator=gen) < self.quarter_turns
            times = torch.randint(1, 4, (n,), generator=gen)
            turned = batch.clone()
            for k in (1, 2, 3):
                chosen = (turn & (times == k)).to(device)
                if bool(chosen.any()):
                    turned[chosen] = torch.rot90(batch[chosen], k, dims=(2, 3))
            batch = turned
        if self.rotate_degrees > 0 or self.shift_fraction > 0:
            angle = self._uniform(n, -self.rotate_degrees, self.rotate_degrees, gen)
            scale = torch.tensor([w, h], dtype=torch.float32) * self.shift_fraction
            shift = self._uniform(2 * n, -1.0, 1.0, gen).view(n, 2) * scale
            batch = affine(batch, angle, shift)
        if self.contrast > 0:
            factor = self._uniform(n, 1 - self.contrast, 1 + self.contrast, gen).to(device)
            mean = batch.mean(dim=(1, 2, 3), keepdim=True)
            batch = (batch - mean) * factor[:, None, None, None] + mean
        if self.brightness > 0:
            offset = self._uniform(n, -self.brightness, self.brightness, gen).to(device)
            batch = batch + offset[:, None, None, None]
        batch = batch.clamp(0.0, 1.0).to(x.dtype)
        return batch[0] if single else batch


# Every augmentation off: image classification's default, which a project's changes turn on.
OFF = {
    "hflip": 0.0,
    "vflip": 0.0,
    "quarter_turns": 0.0,
    "rotate_degrees": 0.0,
    "shift_fraction": 0.0,
    "brightness": 0.0,
    "contrast": 0.0,
}


def from_changes(changes: dict) -> Augment | None:
    """Image classification's policy: nothing, unless ``changes`` turn some of it on (None
    when nothing is on, so training does no work per batch)."""
    policy = Augment(**{**OFF, **changes})
    return policy if any(getattr(policy, name) > 0 for name in OFF) else None


def _none() -> None:
    return None


# Named policies that benchmarks/augmentation.py compares: ``light`` keeps orientation
# (text, digits, scenes with an up), ``standard`` adds a horizontal flip and small
# rotations, ``dihedral`` any orientation (parts seen from above).
POLICIES = {
    "none": _none,
    "light": lambda: Augment(hflip=0.0, rotate_degrees=0.0),
    "standard": Augment,
    "dihedral": lambda: Augment(vflip=0.5, quarter_turns=0.75),
}
