"""Spectral convolution written as DFT-as-matmul with real weights, so it exports to plain ONNX MatMul ops.

Why not ``torch.fft``: the TorchScript ONNX exporter has no FFT ops and the dynamo exporter emits the ONNX ``DFT``
op, which ONNX Runtime runs several times slower than matrix products of the kept modes. Here the truncated DFT over the kept
modes is a product with cos/sin matrices that are built *inside the graph* from the input's shape, so one exported
file serves every resolution. The layer equals ``irfftn(W * rfftn(x)[kept modes], s=x.shape)`` (checked against
torch.fft in the tests to 1e-5).

Mode layout: the last axis keeps the non-negative frequencies ``0..m-1`` (rfft side); every other axis keeps
``0..m-1`` and ``-m..-1`` (both signs), as the standard FNO does.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from accel.errors import GridError


def _exporting() -> bool:
    return bool(getattr(torch.compiler, "is_exporting", lambda: False)()) or torch.jit.is_tracing()


def _angles(n: int, m: int, two_sided: bool, device) -> torch.Tensor:
    """2 pi (j k mod n) / n for grid index j (rows) and kept frequency k (columns); the mod keeps float32 exact."""
    k = torch.arange(m, device=device)
    if two_sided:
        k = torch.cat([k, k - m])  # 0..m-1, -m..-1
    j = torch.arange(n, device=device)
    n_t = j[-1] + 1  # n as a graph tensor: the exporter cannot take a symbolic int as the Mod divisor
    return torch.remainder(j[:, None] * k[None, :], n_t).to(torch.float32) * (2 * math.pi) / n_t.to(torch.float32)


def min_extent(modes: int, two_sided: bool) -> int:
    """Smallest grid extent that can hold ``modes`` kept frequencies without aliasing them onto each other."""
    return 2 * modes if two_sided else 2 * (modes - 1) + 1


class SpectralConv(nn.Module):
    """Fourier layer over the trailing ``len(modes)`` axes of a (batch, channel, *grid) tensor.

    ``modes[i]`` is the number of kept frequencies along grid axis i (per sign on all but the last axis).
    Complex weights are stored as two real tensors; the complex product is one real batched matmul.
    """

    def __init__(self, in_channels: int, out_channels: int, modes: tuple[int, ...]):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.modes = tuple(int(m) for m in modes)
        shape = [2 * m for m in self.modes[:-1]] + [self.modes[-1]]
        n_modes = math.prod(shape)
        scale = 1.0 / (in_channels * out_channels)
        self.weight_re = nn.Parameter(scale * torch.rand(n_modes, in_channels, out_channels))
        self.weight_im = nn.Parameter(scale * torch.rand(n_modes, in_channels, out_channels))

    @property
    def dims(self) -> int:
        return len(self.modes)

    def check_grid(self, grid: tuple[int, ...]) -> None:
        need = [min_extent(m, i < self.dims - 1) for i, m in enumerate(self.modes)]
        if any(n < k for n, k in zip(grid, need)):
            raise GridError(
                f"grid {'x'.join(map(str, grid))} is too coarse for a spectral layer keeping modes {self.modes}: "
                f"each extent must be at least {'x'.join(map(str, need))}; use a finer grid or a model with fewer modes")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.dims
        grid = tuple(x.shape[-d:])
        if not _exporting():
            self.check_grid(grid)
        lead = x.dim() - d  # batch and channel axes
        # Forward transform, last axis first. After each axis, the transformed axis moves to the front of the
        # grid axes so the next one is always last (cheap MatMul on the last axis).
        ang = _angles(grid[-1], self.modes[-1], False, x.device)
        re, im = x @ torch.cos(ang), -(x @ torch.sin(ang))
        for axis in range(d - 2, -1, -1):
            re, im = re.movedim(-1, lead), im.movedim(-1, lead)
            ang = _angles(grid[axis], self.modes[axis], True, x.device)
            c, s = torch.cos(ang), torch.sin(ang)
            re, im = re @ c + im @ s, im @ c - re @ s
        # re/im now have axes (B, C, k_1, ..., k_last, k_0): flatten the modes and mix channels per mode.
        spec_shape = re.shape[2:]
        b = re.shape[0]
        z = torch.cat([re, im], 1).flatten(2).permute(2, 0, 1)  # (modes, B, 2C)
        w = torch.cat([torch.cat([self.weight_re, self.weight_im], 2),
                       torch.cat([-self.weight_im, self.weight_re], 2)], 1)  # (modes, 2Cin, 2Cout)
        z = torch.bmm(z, w).permute(1, 2, 0)  # (B, 2Cout, modes)
        re = z[:, : self.out_channels].reshape(b, self.out_channels, *spec_shape)
        im = z[:, self.out_channels:].reshape(b, self.out_channels, *spec_shape)
        # Inverse transform: undo the axes in reverse order (complex inverse DFT on the two-sided axes).
        for axis in range(d - 1):
            ang = _angles(grid[axis], self.modes[axis], True, x.device)
            c, s = torch.cos(ang).T / grid[axis], torch.sin(ang).T / grid[axis]
            re, im = re @ c - im @ s, im @ c + re @ s
            re, im = re.movedim(lead, -1), im.movedim(lead, -1)
        # Last axis: real inverse (Hermitian symmetry: every frequency but 0 and Nyquist counts twice).
        n, m = grid[-1], self.modes[-1]
        ang = _angles(n, m, False, x.device).T
        k = torch.arange(m, device=x.device)
        weight = torch.where((k == 0) | (2 * k == n), 1.0, 2.0).to(torch.float32)[:, None] / n
        return re @ (torch.cos(ang) * weight) - im @ (torch.sin(ang) * weight)

    def widen(self, modes: tuple[int, ...]) -> "SpectralConv":
        """A copy keeping more modes: existing weights go to the same frequencies, new ones start at zero."""
        if len(modes) != self.dims or any(a < b for a, b in zip(modes, self.modes)):
            raise ValueError(f"widen needs {self.dims} mode counts each >= {self.modes}, got {tuple(modes)}")
        new = SpectralConv(self.in_channels, self.out_channels, tuple(modes))
        with torch.no_grad():
            for name in ("weight_re", "weight_im"):
                old_w = self._grid_weights(getattr(self, name), self.modes)
                new_w = torch.zeros(*_spec_shape(modes), self.in_channels, self.out_channels)
                idx = tuple(_mode_index(mo, mn, i < self.dims - 1) for i, (mo, mn) in enumerate(zip(self.modes, modes)))
                new_w[torch.meshgrid(*idx, indexing="ij")] = old_w
                getattr(new, name).copy_(_flatten_weights(new_w, self.dims))
        return new

    @staticmethod
    def _grid_weights(w: torch.Tensor, modes) -> torch.Tensor:
        """Weights indexed by (k_0, ..., k_last, cin, cout) instead of the flattened internal mode order."""
        d = len(modes)
        shape = _spec_shape(modes)
        internal = shape[1:] + shape[:1]  # order after the forward transform: k_1, ..., k_last, k_0
        w = w.reshape(*internal, *w.shape[1:])
        return w.movedim(d - 1, 0)


def _spec_shape(modes) -> list[int]:
    return [2 * m for m in modes[:-1]] + [modes[-1]]


def _flatten_weights(w: torch.Tensor, d: int) -> torch.Tensor:
    w = w.movedim(0, d - 1)
    return w.reshape(-1, *w.shape[d:])


def _mode_index(old: int, new: int, two_sided: bool) -> torch.Tensor:
    """Positions of the old kept frequencies inside the widened layout."""
    if not two_sided:
        return torch.arange(old)
    return torch.cat([torch.arange(old), torch.arange(2 * new - old, 2 * new)])


def reference_spectral(x: torch.Tensor, layer: SpectralConv) -> torch.Tensor:
    """The same layer computed with torch.fft and complex weights (tests only)."""
    d = layer.dims
    grid = x.shape[-d:]
    xf = torch.fft.rfftn(x, dim=tuple(range(-d, 0)))
    w = torch.complex(SpectralConv._grid_weights(layer.weight_re, layer.modes),
                      SpectralConv._grid_weights(layer.weight_im, layer.modes))
    idx = [torch.cat([torch.arange(m), torch.arange(n - m, n)]) for m, n in zip(layer.modes[:-1], grid[:-1])]
    idx.append(torch.arange(layer.modes[-1]))
    mesh = torch.meshgrid(*idx, indexing="ij")
    sel = xf[(..., *mesh)]  # (B, Cin, *spec)
    out_modes = torch.einsum("bi...,...io->bo...", sel, w)
    of = torch.zeros(x.shape[0], layer.out_channels, *xf.shape[2:], dtype=xf.dtype)
    of[(..., *mesh)] = out_modes
    return torch.fft.irfftn(of, s=tuple(grid), dim=tuple(range(-d, 0)))
