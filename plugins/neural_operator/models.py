"""The neural operators: a 2D FNO, a spatiotemporal FNO (x, y, t) and a one-step 2D FNO rolled out in time, plus a
small registry to build them by name.

All take raw physical fields and return raw physical fields: the normalisation constants are buffers inside the
model, so an exported ONNX file is self-contained. Grid coordinates are built inside the graph from the input shape
(cell centres on the unit square / unit time interval), so one file serves any resolution.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from accel.errors import AccelError
from .spectral import SpectralConv


def _coords(n: int, device) -> torch.Tensor:
    """Cell-centre coordinates (i + 1/2) / n on [0, 1]."""
    return (torch.arange(n, device=device).to(torch.float32) + 0.5) / n


class _Normaliser(nn.Module):
    """Scalar mean/std for inputs and outputs, fitted from training data (``fit``) and saved with the weights."""

    def __init__(self):
        super().__init__()
        for name in ("in_mean", "out_mean"):
            self.register_buffer(name, torch.zeros(()))
        for name in ("in_std", "out_std"):
            self.register_buffer(name, torch.ones(()))

    def fit(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.in_mean.fill_(float(x.mean()))
        self.in_std.fill_(float(x.std()) or 1.0)
        self.out_mean.fill_(float(y.mean()))
        self.out_std.fill_(float(y.std()) or 1.0)


class FNO2d(nn.Module):
    """Fourier neural operator on a 2D grid: (B, in_channels, H, W) -> (B, out_channels, H, W).

    ``padding`` cells of zeros are appended on the high side of each axis before the spectral layers (and cropped
    after), so a non-periodic problem (e.g. Dirichlet boundaries) is not forced to look periodic; use 0 for
    periodic problems. ``padding_fraction`` > 0 pads ceil(fraction * n) cells instead, the same fraction of the
    domain at every resolution: use it when the model is to be applied on grids other than the training grid.
    """

    kind = "fno2d"
    dim = 2

    def __init__(self, in_channels: int = 1, out_channels: int = 1, modes: tuple[int, int] = (12, 12),
                 width: int = 32, layers: int = 4, padding: int = 8, projection: int = 64,
                 padding_fraction: float = 0.0):
        super().__init__()
        self.config = dict(in_channels=in_channels, out_channels=out_channels, modes=tuple(modes), width=width,
                           layers=layers, padding=padding, projection=projection, padding_fraction=padding_fraction)
        self.norm = _Normaliser()
        self.padding = padding
        self.padding_fraction = float(padding_fraction)
        self.lift = nn.Conv2d(in_channels + 2, width, 1)
        self.spectral = nn.ModuleList([SpectralConv(width, width, tuple(modes)) for _ in range(layers)])
        self.pointwise = nn.ModuleList([nn.Conv2d(width, width, 1) for _ in range(layers)])
        self.proj1 = nn.Conv2d(width, projection, 1)
        self.proj2 = nn.Conv2d(projection, out_channels, 1)

    @property
    def modes(self) -> tuple[int, ...]:
        return self.spectral[-1].modes

    def min_grid(self) -> int:
        """Smallest grid extent every spectral layer can take (padding counts toward the grid)."""
        from .spectral import min_extent

        need = max(max(min_extent(m, True) for m in s.modes[:-1]) for s in self.spectral)
        need = max(need, max(min_extent(s.modes[-1], False) for s in self.spectral))
        n = 1
        while self.pad_cells(n) + n < need:
            n += 1
        return n

    def pad_cells(self, n):
        """Zero cells appended to an axis of ``n`` cells (works on symbolic sizes during export)."""
        if self.padding_fraction > 0:
            # ceil with non-negative operands only: ONNX integer Div truncates, torch's // floors
            return (n * int(round(self.padding_fraction * 1000)) + 999) // 1000
        return self.padding

    def fit_normaliser(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Fit the input/output scaling from training inputs ``x`` and targets ``y``."""
        self.norm.fit(x, y)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer (B, projection, H, W): the output is its pointwise linear map ``proj2``."""
        b, _, h, w = x.shape
        x = (x - self.norm.in_mean) / self.norm.in_std
        gy = _coords(h, x.device)[None, None, :, None].expand(b, 1, h, w)
        gx = _coords(w, x.device)[None, None, None, :].expand(b, 1, h, w)
        x = self.lift(torch.cat([x, gy, gx], 1))
        padded = self.padding_fraction > 0 or self.padding > 0
        if padded:
            x = F.pad(x, (0, self.pad_cells(w), 0, self.pad_cells(h)))
        for i, (spec, pw) in enumerate(zip(self.spectral, self.pointwise)):
            x = spec(x) + pw(x)
            if i < len(self.spectral) - 1:
                x = F.gelu(x)
        if padded:
            x = x[..., :h, :w]
        return F.gelu(self.proj1(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj2(self.features(x)) * self.norm.out_std + self.norm.out_mean


class SpatioTemporalFNO(nn.Module):
    """FNO over (t, y, x): the first ``in_frames`` snapshots (B, in_frames, H, W) -> the next ``out_frames``
    snapshots (B, out_frames, H, W).

    The input frames become channels repeated along a time axis of length ``out_frames`` (with t, y, x coordinate
    channels), and 3D spectral layers act on (t, y, x). Space is periodic; time is padded by ``time_padding``
    zero frames because the trajectory is not periodic in time.
    """

    kind = "sfno"
    dim = 2  # spatial dimension of the problem; time is the extra axis

    def __init__(self, in_frames: int = 10, out_frames: int = 40, modes: tuple[int, int, int] = (8, 12, 12),
                 width: int = 20, layers: int = 4, time_padding: int = 6, projection: int = 64):
        super().__init__()
        self.config = dict(in_frames=in_frames, out_frames=out_frames, modes=tuple(modes), width=width,
                           layers=layers, time_padding=time_padding, projection=projection)
        self.in_frames, self.out_frames, self.time_padding = in_frames, out_frames, time_padding
        self.norm = _Normaliser()
        self.lift = nn.Conv3d(in_frames + 3, width, 1)
        self.spectral = nn.ModuleList([SpectralConv(width, width, tuple(modes)) for _ in range(layers)])
        self.pointwise = nn.ModuleList([nn.Conv3d(width, width, 1) for _ in range(layers)])
        self.proj1 = nn.Conv3d(width, projection, 1)
        self.proj2 = nn.Conv3d(projection, 1, 1)

    @property
    def modes(self) -> tuple[int, ...]:
        return self.spectral[-1].modes

    def min_grid(self) -> int:
        from .spectral import min_extent

        return max(max(min_extent(s.modes[1], True), min_extent(s.modes[2], False)) for s in self.spectral)

    def fit_normaliser(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Fit the input/output scaling from training inputs ``x`` and targets ``y``."""
        self.norm.fit(x, y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        t = self.out_frames
        x = (x - self.norm.in_mean) / self.norm.in_std
        x = x[:, :, None].expand(b, self.in_frames, t, h, w)
        gt = ((torch.arange(t, device=x.device).to(torch.float32) + 1.0) / t)[None, None, :, None, None]
        gy = _coords(h, x.device)[None, None, None, :, None]
        gx = _coords(w, x.device)[None, None, None, None, :]
        x = torch.cat([x, gt.expand(b, 1, t, h, w), gy.expand(b, 1, t, h, w), gx.expand(b, 1, t, h, w)], 1)
        x = self.lift(x)
        if self.time_padding:
            x = F.pad(x, (0, 0, 0, 0, 0, self.time_padding))
        for i, (spec, pw) in enumerate(zip(self.spectral, self.pointwise)):
            x = spec(x) + pw(x)
            if i < len(self.spectral) - 1:
                x = F.gelu(x)
        if self.time_padding:
            x = x[:, :, :t]
        x = self.proj2(F.gelu(self.proj1(x)))[:, 0]
        return x * self.norm.out_std + self.norm.out_mean


class MarkovFNO(nn.Module):
    """Autoregressive operator for a Markov evolution: (B, in_frames, H, W) -> the next (B, out_frames, H, W).

    ``step`` (a 2D FNO with ``context`` input channels, passed in) maps the last ``context`` snapshots to the
    increment to the next snapshot; the forward pass rolls it out ``out_frames`` times, feeding its own
    predictions back. Why: the vorticity equation is Markov in the state, so every pair of consecutive snapshots
    of a trajectory is a training example (about 48 per trajectory instead of one), and the one-step map is a
    near-identity that a small FNO learns far more accurately than the whole 40-frame map.
    """

    kind = "arfno"
    dim = 2

    def __init__(self, step: nn.Module, in_frames: int = 10, out_frames: int = 40, context: int = 2):
        super().__init__()
        if not 1 <= context <= in_frames:
            raise AccelError(f"context {context} must be between 1 and in_frames ({in_frames})")
        if getattr(step, "config", {}).get("in_channels") != context:
            raise AccelError(f"the step model takes {step.config.get('in_channels')} frames; context is {context}")
        self.step = step
        self.in_frames, self.out_frames, self.context = in_frames, out_frames, context
        self.config = dict(in_frames=in_frames, out_frames=out_frames, context=context, step=dict(step.config))

    STEP_KEYS = ("modes", "width", "layers", "projection", "padding", "padding_fraction")

    @classmethod
    def from_config(cls, step: dict | None = None, **config) -> "MarkovFNO":
        """Build from a config; the step network's settings may be given flat (``width=...``) or as ``step``."""
        step = dict(step or {})
        step.update({k: config.pop(k) for k in cls.STEP_KEYS if k in config})
        step.setdefault("in_channels", config.get("context", 2))
        step.setdefault("padding", 0)  # periodic in space
        return cls(FNO2d(**step), **config)

    @property
    def spectral(self) -> nn.ModuleList:
        return self.step.spectral

    @property
    def modes(self) -> tuple[int, ...]:
        return self.step.modes

    @property
    def norm(self) -> _Normaliser:
        return self.step.norm

    def pad_cells(self, n):
        return self.step.pad_cells(n)

    def min_grid(self) -> int:
        return self.step.min_grid()

    def fit_normaliser(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Fit the step model's scaling on every context window of the trajectories ``x`` then ``y`` and the
        increment that follows it."""
        frames = torch.cat([x, y], 1)
        starts = range(self.context, frames.shape[1])
        win = torch.stack([frames[:, s - self.context:s] for s in starts], 1).flatten(0, 1)
        nxt = torch.stack([frames[:, s] for s in starts], 1).flatten(0, 1)
        self.step.norm.fit(win, nxt - win[:, -1])

    def rollout(self, window: torch.Tensor, steps: int) -> torch.Tensor:
        """``steps`` snapshots after the context window (B, context, H, W)."""
        frames = list(window.unbind(1))
        out = []
        for _ in range(steps):
            nxt = frames[-1] + self.step(torch.stack(frames[-self.context:], 1))[:, 0]
            frames.append(nxt)
            out.append(nxt)
        return torch.stack(out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rollout(x[:, -self.context:], self.out_frames)


MODELS = {"fno2d": FNO2d, "sfno": SpatioTemporalFNO, "arfno": MarkovFNO}


def build_model(name: str, **config) -> nn.Module:
    """Build a registered model by name with its config (keys are the model's constructor arguments)."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise AccelError(f"unknown neural-operator model {name!r}; valid names: {', '.join(sorted(MODELS))}") from None
    try:
        return cls.from_config(**config) if hasattr(cls, "from_config") else cls(**config)
    except TypeError as exc:
        raise AccelError(f"bad config for model {name!r}: {exc}") from exc
