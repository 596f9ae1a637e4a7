"""PNG plots of a training run: sample density per stage and the error field (matplotlib object API, Agg)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _figure(**kwargs):
    """A figure on its own Agg canvas: no process-wide backend or figure registry, nothing to close."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def plot_samples(result, path) -> Path:
    """2D histograms of the collocation points of the first, middle and last stage (axes 0 and 1 in >2D)."""
    from matplotlib.colors import LogNorm

    dom = result.problem.domain
    stages = result.samples
    picks = sorted({0, len(stages) // 2, len(stages) - 1})
    fig = _figure(figsize=(4 * len(picks), 3.6))
    axes = fig.subplots(1, len(picks), squeeze=False)
    for ax, i in zip(axes[0], picks):
        stage, pts = stages[i]
        h = ax.hist2d(pts[:, 0], pts[:, 1], bins=40, range=[[dom.low[0], dom.high[0]], [dom.low[1], dom.high[1]]],
                      cmap="viridis", norm=LogNorm(vmin=1), cmin=1)  # log: the uniform share stays visible
        fig.colorbar(h[3], ax=ax)
        ax.set_title(f"stage {stage}: {len(pts)} points")
        ax.set_xlabel("x0")
        ax.set_ylabel("x1")
    fig.suptitle(f"{result.problem.name}, sampler {result.config.sampler}: sample density")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return Path(path)


def plot_error(result, path, m: int = 161) -> Path:
    """|u_pinn - u_exact| on the plane through the domain centre spanned by axes 0 and 1."""
    from .trainer import predict

    prob = result.problem
    dom = prob.domain
    g0, g1 = np.linspace(dom.low[0], dom.high[0], m), np.linspace(dom.low[1], dom.high[1], m)
    X, Y = np.meshgrid(g0, g1, indexing="ij")
    pts = np.tile(dom.center, (m * m, 1))
    pts[:, 0], pts[:, 1] = X.ravel(), Y.ravel()
    err = np.abs(predict(result.model, pts) - prob.exact_numpy(pts)).reshape(m, m)
    fig = _figure(figsize=(5, 4))
    ax = fig.subplots()
    im = ax.imshow(err.T, origin="lower", extent=[dom.low[0], dom.high[0], dom.low[1], dom.high[1]], cmap="magma")
    fig.colorbar(im, ax=ax)
    ax.set_title(f"|u - u_exact|, {prob.name}, {result.config.sampler} (rel L2 {result.metrics['rel_l2']:.3g})")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return Path(path)
