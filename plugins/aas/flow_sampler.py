"""AAS: a normalizing-flow sampler trained adversarially against the PINN residual (Tang et al., ICLR 2024).

The game: the PINN minimises the mean squared residual over points drawn from q = a U + (1 - a) p_theta (U
uniform, a = ``uniform_fraction``); the flow p_theta maximises the residual it sees, by fitting the residual-induced
density r^2 / Z with the DAS cross-entropy ``-mean(w log p_theta(x))``, ``w = r^2 / q_prev(x)`` on points drawn
from the previous mixture (self-normalised importance weights, as in MJfadeaway/DAS-2). Moving p toward r^2 / Z
raises E_p[r^2], the PINN's loss; the PINN's next stage lowers it again. Stability (a naive flow blew up in the first
runs of this plugin): the uniform share keeps the background covered, the weights are tempered and clipped, the flow is
warm-started across stages with a modest step count, and the flow lives on the box scaled to [-s, s]^d so its
Gaussian base starts mostly inside. Flow samples outside the box are rejected and counted.
"""
from __future__ import annotations

import logging
import math

import numpy as np

from .errors import SamplerError, TrainingDiverged
from .samplers import Sampler

log = logging.getLogger(__name__)


class AASSampler(Sampler):
    name = "aas"
    # the PINN reuses a set of points for 50 steps: with a fresh set every step the importance-weighted minibatch
    # gradient is too noisy for Adam to grow the peak in 5000 steps (measured, docs/benchmarks/aas.md)
    resample_every = 50

    def __init__(self, domain, seed=0, uniform_fraction: float = 0.5, flow_steps: int = 100, flow_lr: float = 3e-3,
                 hidden: int = 64, transforms: int = 3, bins: int = 8, batch: int = 1024, temper: float = 1.0,
                 weight_clip: float = 50.0, box_scale: float = 2.0, pool: int = 4, is_power: float = 1.0):
        super().__init__(domain, seed)
        if not 0 <= uniform_fraction < 1:
            raise SamplerError(f"uniform_fraction must be in [0, 1), got {uniform_fraction}")
        self.uniform_fraction = uniform_fraction
        self.flow_steps, self.flow_lr, self.batch = flow_steps, flow_lr, batch
        self.temper, self.weight_clip, self.box_scale, self.pool = temper, weight_clip, box_scale, pool
        self.is_power = is_power
        self._flow_args = dict(hidden=hidden, transforms=transforms, bins=bins)
        self.flow = None
        self.trained = False
        self.last_flow_loss = float("nan")

    # -- the flow, on y = s * z, z = x mapped to [-1, 1]^d ---------------------------------------------------------
    def _build(self):
        import torch
        import zuko

        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            a = self._flow_args
            self.flow = zuko.flows.NSF(self.domain.dim, transforms=a["transforms"], bins=a["bins"],
                                       hidden_features=(a["hidden"], a["hidden"]))
        self.opt = torch.optim.Adam(self.flow.parameters(), lr=self.flow_lr)
        # log|dy/dx| of the affine map x -> y, to report densities in x
        self._log_jac = self.domain.dim * math.log(self.box_scale) - float(np.log(self.domain.half_width).sum())

    def _to_y(self, x):
        return self.box_scale * self.domain.to_unit(x)

    def log_density(self, x: np.ndarray) -> np.ndarray:
        """log p_theta(x) of the flow in physical coordinates (before rejection)."""
        import torch

        with torch.no_grad():
            y = torch.as_tensor(self._to_y(x), dtype=torch.float32)
            return self.flow().log_prob(y).double().numpy() + self._log_jac

    def mixture_density(self, x: np.ndarray) -> np.ndarray:
        """q(x) = a / |Omega| + (1 - a) p_theta(x): the density the current collocation points come from."""
        u = np.full(len(x), 1.0 / self.domain.volume)
        if not self.trained:
            return u
        a = self.uniform_fraction
        return a * u + (1 - a) * np.exp(self.log_density(x))

    # -- the protocol -----------------------------------------------------------------------------------------------
    def refresh(self, residual, points):
        import torch

        if self.flow is None:
            self._build()
        # the pool: the current points (drawn from q_prev) plus fresh draws from q_prev, for a larger fit set
        extra = [self.sample(len(points)) for _ in range(max(0, self.pool - 1))]
        x = np.concatenate([points] + extra) if extra else np.asarray(points)
        r = residual(x)
        q = self.mixture_density(x)
        if not np.all(np.isfinite(q)):
            raise TrainingDiverged("the AAS flow's log-density became NaN/inf on the collocation pool; lower flow_lr, "
                                   "raise uniform_fraction or temper the weights (temper < 1)")
        w = np.abs(r) ** (2 * self.temper) / q
        if not np.all(np.isfinite(w)) or w.sum() <= 0:
            raise TrainingDiverged("the residual used to train the AAS flow is NaN/inf or zero everywhere; lower the "
                                   "learning rate or check the problem's source term")
        w = w / w.mean()
        w = np.minimum(w, self.weight_clip)  # one point must not own the whole fit
        w = w / w.mean()
        y = torch.as_tensor(self._to_y(x), dtype=torch.float32)
        wt = torch.as_tensor(w, dtype=torch.float32)
        g = torch.Generator().manual_seed(self.seed + len(x))
        loss = None
        for _ in range(self.flow_steps):
            idx = torch.randint(len(y), (min(self.batch, len(y)),), generator=g)
            logp = self.flow().log_prob(y[idx])
            if not torch.all(torch.isfinite(logp)):
                raise TrainingDiverged("the AAS flow's log-density became NaN/inf while fitting the residual; "
                                       "lower flow_lr, raise uniform_fraction or temper the weights (temper < 1)")
            loss = -(wt[idx] * logp).mean()
            self.opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.flow.parameters(), 10.0)
            self.opt.step()
        self.last_flow_loss = float(loss.detach()) if loss is not None else float("nan")
        self.trained = True

    def loss_weights(self, x: np.ndarray):
        """Per-point weights of the PINN loss: (U(x) / q(x))^is_power, mean 1. With is_power = 1 the loss is an
        unbiased, low-variance estimate of the uniform mean of r^2 (the flow's points then cut the variance where the
        residual lives instead of biasing the objective toward it, which let the flat background drift); with 0 it
        is the plain mean over the adversarial points (DAS)."""
        if not self.trained or self.is_power == 0:
            return None
        w = (1.0 / self.domain.volume / self.mixture_density(x)) ** self.is_power
        return w / w.mean()

    def density(self, x: np.ndarray) -> np.ndarray:
        return self.mixture_density(x)

    def sample_flow(self, n: int, max_rounds: int = 20) -> np.ndarray:
        """n flow points inside the domain; those outside are rejected (counted in ``rejected``)."""
        import torch

        got, have = [], 0
        for _ in range(max_rounds):
            m = int(1.3 * (n - have)) + 16
            with torch.no_grad():
                y = self.flow().sample((m,)).double().numpy()
            if np.isnan(y).any():
                raise TrainingDiverged("the AAS flow's log-density became NaN (its samples are NaN); lower flow_lr, "
                                       "raise uniform_fraction or temper the weights (temper < 1)")
            x = self.keep_inside(self.domain.from_unit(y / self.box_scale))
            got.append(x)
            have += len(x)
            if have >= n:
                return np.concatenate(got)[:n]
        raise SamplerError(f"the AAS flow put only {have} of the {n} requested points inside the domain after "
                           f"{max_rounds} rounds ({self.rejected} of {self.proposed} proposals rejected); raise "
                           "uniform_fraction or box_scale")

    def sample(self, n):
        if not self.trained:
            return self.domain.uniform(n, self.rng)
        n_u = int(round(self.uniform_fraction * n))
        return np.concatenate([self.domain.uniform(n_u, self.rng), self.sample_flow(n - n_u)])

    def state(self):
        return dict(super().state(), flow_loss=self.last_flow_loss)
