"""The operators WoS-NO and its physics-informed baseline train, chosen by registered name (``Config.operator``).

An operator says where it wants WoS targets, builds both losses for a batch of training instances and predicts
at any points (for scoring), so the trainer's loop (epochs, running means of the WoS targets, optimiser) is the
same for all of them:

- ``mlp``: a point-based MLP (``model.PointOperator``) supervised at scattered interior points per instance; its
  physics-informed loss takes the autograd Laplacian at collocation points (redrawn every step by default).
- ``fno``: the neural-operator plugin's ``fno2d`` on a grid of cell-centred nodes covering the family's bounding
  box. Input channels: the source averaged over each cell (a source narrower than a cell keeps its mass), the
  harmonic extension of the boundary data, the domain mask and a level set ``r / R(t) - 1``. WoS-NO regresses
  the output on WoS targets at the grid nodes inside the domain (the loss is masked to them); its
  physics-informed counterpart penalises the five-point finite-difference residual ``-Laplace_h u - f`` at the
  same nodes. Both fit the boundary data at boundary points (drawn afresh every step) through bilinear
  interpolation of the output grid, which is also how predictions at arbitrary points are made.

Losses are normalised per instance when ``Config.normalize`` is set: data terms by the mean square of the
instance's targets, residuals by the mean square of its source, boundary terms by the mean square of its data.
torch is imported inside the operators only (this module is imported by the command line to list the names).
"""
from __future__ import annotations

import numpy as np

from accel.errors import AccelError

from ..problems import N_FOURIER, N_GAUSS, N_PARAMS, amplitude_scale

R_MAX = 1.3  # the family's domains lie in r <= 1 + 0.2 + 0.1


class MLPOperator:
    """``mlp``: the point-based operator (instance parameters, query point and input functions there -> u)."""

    name = "mlp"

    def __init__(self, cfg, ds):
        from .model import PointOperator

        self.cfg, self.ds = cfg, ds
        self.model = PointOperator(N_PARAMS, cfg.width, cfg.depth, cfg.features, cfg.sigma)

    def supervision_points(self) -> list[np.ndarray]:
        return self.ds.xi

    def wos_loss(self, ids, targets, rng):
        import torch

        cfg, ds = self.cfg, self.ds
        Pi, Xi = _tensors(ds, ids, "interior")
        Pb, Xb = _tensors(ds, ids, "boundary")
        gb = torch.from_numpy(np.concatenate([ds.gb[i] for i in ids]).astype(np.float32))
        wb = _weights(ids, ds.gscale, cfg.boundary, cfg)
        ti = torch.from_numpy(np.concatenate([targets[i] for i in ids]).astype(np.float32))
        uscale = [np.mean(targets[i] ** 2) + 1e-8 for i in ids]
        wi = _weights(np.arange(len(ids)), uscale, cfg.interior, cfg)
        return (_wmean((self.model(Pi, Xi) - ti) ** 2, wi)
                + cfg.wos_boundary_weight * _wmean((self.model(Pb, Xb) - gb) ** 2, wb))

    def pinn_loss(self, ids, rng):
        import torch

        cfg, ds = self.cfg, self.ds
        if cfg.pinn_points == "redraw":
            Pi, Xi, fi, Pb, Xb, gb = _redrawn(ds, ids, cfg, rng)
        else:
            Pi, Xi = _tensors(ds, ids, "interior")
            Pb, Xb = _tensors(ds, ids, "boundary")
            gb = torch.from_numpy(np.concatenate([ds.gb[i] for i in ids]).astype(np.float32))
            fi = torch.from_numpy(np.concatenate([ds.fi[i] for i in ids]).astype(np.float32))
        wb = _weights(ids, ds.gscale, cfg.boundary, cfg)
        wi = _weights(ids, ds.fscale, cfg.interior, cfg)
        _, lap = _laplacian(self.model, Pi, Xi)
        return _wmean((lap + fi) ** 2, wi) + cfg.boundary_weight * _wmean((self.model(Pb, Xb) - gb) ** 2, wb)

    def predict(self, inst, X: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            P = torch.from_numpy(np.repeat(inst.params[None].astype(np.float32), len(X), 0))
            return self.model(P, torch.from_numpy(X.astype(np.float32))).numpy().astype(np.float64)


class StarGrid:
    """Cell-centred ``n x n`` nodes on ``[-L, L]^2`` (row index = y, column = x, as the FNO's coordinate channels)
    and one family member's input fields there. ``L = R_MAX + 2 h``: two cells of margin around every domain of the
    family, so every interior node's five-point stencil lies on the grid."""

    CHANNELS = ("cell-averaged source / (10 amplitude scale)", "harmonic extension of g", "mask", "r / R(t) - 1")

    def __init__(self, n: int):
        if n < 8:
            raise AccelError(f"a WoS-NO grid needs at least 8 nodes per axis, got {n}")
        self.n = int(n)
        self.L = R_MAX * self.n / (self.n - 4)
        self.h = 2 * self.L / self.n
        self.centres = -self.L + (np.arange(self.n) + 0.5) * self.h
        self.X, self.Y = np.meshgrid(self.centres, self.centres)
        self.nodes = np.stack([self.X.ravel(), self.Y.ravel()], axis=1)

    def level_set(self, inst) -> np.ndarray:
        """``r / R(t) - 1``: negative inside, zero on the boundary (n, n)."""
        return np.hypot(self.X, self.Y) / inst.R(np.arctan2(self.Y, self.X)) - 1.0

    def interior(self, inst, margin: float = 1e-3) -> np.ndarray:
        """Nodes strictly inside ``r < (1 - margin) R(t)`` (n, n) bool: where WoS targets and residuals live."""
        return self.level_set(inst) < -margin

    def source_average(self, inst) -> np.ndarray:
        """The Gaussian sources' mean over each cell (exact: products of normal CDF differences), (n, n)."""
        from scipy.special import ndtr

        s, h = inst.sigma, self.h
        out = np.zeros((self.n, self.n))
        for A, x0, y0 in inst.params[2:2 + 3 * N_GAUSS].reshape(N_GAUSS, 3):
            ax = ndtr((self.centres + h / 2 - x0) / s) - ndtr((self.centres - h / 2 - x0) / s)
            ay = ndtr((self.centres + h / 2 - y0) / s) - ndtr((self.centres - h / 2 - y0) / s)
            out += A * 2 * np.pi * s * s / (h * h) * np.outer(ay, ax)
        return out

    def inputs(self, inst) -> np.ndarray:
        """The operator's input channels (4, n, n), float32 (``CHANNELS``)."""
        phi = self.level_set(inst)
        return np.stack([self.source_average(inst) / (10.0 * amplitude_scale(inst.sigma)),
                         harmonic_extension(inst.params, self.nodes).reshape(self.n, self.n),
                         (phi < 0).astype(np.float64), phi]).astype(np.float32)

    def sample(self, u, X):
        """Bilinear interpolation of grids ``u`` (B, n, n) at points ``X`` (B, m, 2) -> (B, m) (torch)."""
        import torch.nn.functional as F

        # cell centres sit at (i + 1/2) / n of [-L, L]: grid_sample's align_corners=False convention
        return F.grid_sample(u[:, None], (X / self.L)[:, None], mode="bilinear", padding_mode="border",
                             align_corners=False)[:, 0, 0]

    def laplacian(self, u):
        """Five-point Laplacian of ``u`` (B, n, n) at the nodes off the grid's edge (B, n - 2, n - 2) (torch)."""
        c = u[:, 1:-1, 1:-1]
        return (u[:, 2:, 1:-1] + u[:, :-2, 1:-1] + u[:, 1:-1, 2:] + u[:, 1:-1, :-2] - 4 * c) / self.h ** 2


def harmonic_extension(params: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``b0 + sum_k a_k Re (x + i y)^k + b_k Im (x + i y)^k``: the boundary series extended harmonically (numpy)."""
    four = params[2 + 3 * N_GAUSS:]
    z = X[:, 0] + 1j * X[:, 1]
    out = np.full(len(X), four[0], dtype=np.float64)
    for k in range(1, N_FOURIER + 1):
        out += four[2 * k - 1] * (z ** k).real + four[2 * k] * (z ** k).imag
    return out


class GridFNOOperator:
    """``fno``: the neural-operator plugin's ``fno2d`` on a ``StarGrid`` (module docstring)."""

    name = "fno"

    def __init__(self, cfg, ds):
        import torch

        from accel.plugins.neural_operator.models import build_model

        self.cfg, self.ds = cfg, ds
        self.grid = StarGrid(cfg.grid)
        self.model = build_model("fno2d", in_channels=len(StarGrid.CHANNELS), out_channels=1,
                                 modes=(cfg.fno_modes, cfg.fno_modes), width=cfg.fno_width, layers=cfg.fno_layers,
                                 padding=cfg.fno_padding)
        self.inputs = torch.from_numpy(np.stack([self.grid.inputs(i) for i in ds.inst]))
        masks = np.stack([self.grid.interior(i) for i in ds.inst])
        self.mask = torch.from_numpy(masks.astype(np.float32))
        self.nodes = [self.grid.nodes[m.ravel()] for m in masks]
        fbar = np.stack([self.grid.source_average(i) for i in ds.inst])
        self.fbar = torch.from_numpy(fbar.astype(np.float32))
        self.fscale = np.array([np.mean(f[m] ** 2) + 1e-8 for f, m in zip(fbar, masks)])

    def supervision_points(self) -> list[np.ndarray]:
        return self.nodes

    def _masked_mean(self, sq, mask, scales):
        """Mean over each instance's masked nodes, divided by its scale (when normalising), averaged over the batch;
        without normalisation the plain mean over all masked nodes of the batch."""
        count = mask.flatten(1).sum(1)
        per = (sq * mask).flatten(1).sum(1)
        if not self.cfg.normalize:
            return per.sum() / count.sum()
        import torch

        return torch.mean(per / count / torch.from_numpy(np.asarray(scales, dtype=np.float32)))

    def _boundary_term(self, u, ids, rng):
        import torch

        cfg, ds = self.cfg, self.ds
        xb = [ds.inst[i].boundary_points(cfg.boundary, rng) for i in ids]
        gb = torch.from_numpy(np.stack([ds.inst[i].boundary(x) for i, x in zip(ids, xb)]).astype(np.float32))
        sq = (self.grid.sample(u, torch.from_numpy(np.stack(xb).astype(np.float32))) - gb) ** 2
        if not cfg.normalize:
            return sq.mean()
        return torch.mean(sq.mean(1) / torch.from_numpy(ds.gscale[ids].astype(np.float32)))

    def wos_loss(self, ids, targets, rng):
        import torch

        n = self.grid.n
        T = np.zeros((len(ids), n * n), dtype=np.float32)
        for row, i in enumerate(ids):
            T[row, self.mask[i].numpy().ravel() > 0] = targets[i]
        u = self.model(self.inputs[ids])[:, 0]
        scales = [np.mean(targets[i] ** 2) + 1e-8 for i in ids]
        data = self._masked_mean((u - torch.from_numpy(T).view(len(ids), n, n)) ** 2, self.mask[ids], scales)
        return data + self.cfg.wos_boundary_weight * self._boundary_term(u, ids, rng)

    def pinn_loss(self, ids, rng):
        u = self.model(self.inputs[ids])[:, 0]
        res = (self.grid.laplacian(u) + self.fbar[ids][:, 1:-1, 1:-1]) ** 2
        pde = self._masked_mean(res, self.mask[ids][:, 1:-1, 1:-1], self.fscale[ids])
        return pde + self.cfg.boundary_weight * self._boundary_term(u, ids, rng)

    def predict(self, inst, X: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            u = self.model(torch.from_numpy(self.grid.inputs(inst))[None])[:, 0]
            return self.grid.sample(u, torch.from_numpy(X.astype(np.float32))[None])[0].numpy().astype(np.float64)


OPERATORS = {"mlp": MLPOperator, "fno": GridFNOOperator}


def build_operator(name: str, cfg, ds):
    """The registered operator ``name`` for the training instances ``ds``."""
    try:
        cls = OPERATORS[name]
    except KeyError:
        raise AccelError(f"unknown WoS-NO operator {name!r}; valid names: {', '.join(OPERATORS)}") from None
    return cls(cfg, ds)


# -- the point operator's batches ------------------------------------------------------------------------------------
def _redrawn(ds, ids, cfg, rng):
    """Fresh interior and boundary points (with f and g there) for the instances ``ids``."""
    import torch

    Pi, Xi, fi, Pb, Xb, gb = [], [], [], [], [], []
    for i in ids:
        inst = ds.inst[i]
        xi, xb = inst.interior_points(cfg.interior, rng), inst.boundary_points(cfg.boundary, rng)
        Pi.append(np.repeat(ds.params[i][None], len(xi), 0))
        Pb.append(np.repeat(ds.params[i][None], len(xb), 0))
        Xi.append(xi)
        Xb.append(xb)
        fi.append(inst.source(xi))
        gb.append(inst.boundary(xb))
    t = (lambda parts: torch.from_numpy(np.concatenate(parts).astype(np.float32)))
    return t(Pi), t(Xi), t(fi), t(Pb), t(Xb), t(gb)


def _weights(ids, scales, counts, cfg):
    """Per-point loss weights: 1 / the point's instance scale (or None without normalisation)."""
    import torch

    if not cfg.normalize:
        return None
    return torch.from_numpy(np.repeat(1.0 / np.asarray(scales)[ids], counts).astype(np.float32))


def _wmean(sq, w):
    return sq.mean() if w is None else (w * sq).mean()


def _tensors(ds, ids, kind: str):
    import torch

    pts = ds.xi if kind == "interior" else ds.xb
    P = np.concatenate([np.repeat(ds.params[i][None], len(pts[i]), 0) for i in ids])
    X = np.concatenate([pts[i] for i in ids]).astype(np.float32)
    return torch.from_numpy(P), torch.from_numpy(X)


def _laplacian(model, P, X):
    import torch

    X = X.clone().requires_grad_(True)
    u = model(P, X)
    (g,) = torch.autograd.grad(u.sum(), X, create_graph=True)
    uxx = torch.autograd.grad(g[:, 0].sum(), X, create_graph=True)[0][:, 0]
    uyy = torch.autograd.grad(g[:, 1].sum(), X, create_graph=True)[0][:, 1]
    return u, uxx + uyy
