"""Where a PINN's error on a 2D box comes from: the error e = u_NN - u solves Laplace e = R (R: the PDE residual)
with e = 0 on the boundary, so on a finite-difference grid e splits exactly into the parts made by the residual inside
the problem's peak (|u| > 1 % of max |u|) and outside it. Prints each part's share of the relative L2 error outside
the peak, the residual's size and net charge in and out of the peak, and the share of the error in the box's
first sine modes.

    .venv/bin/accel train pinn --problem peak2d --sampler aas --lbfgs-steps 0 --out /tmp/aas_adam
    .venv/bin/python benchmarks/aas_error_sources.py /tmp/aas_adam/checkpoint.pt
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="checkpoint.pt of `accel train pinn` (model weights and config)")
    p.add_argument("--grid", type=int, default=401, help="grid points per axis")
    args = p.parse_args(argv)
    import scipy.sparse as sp
    import scipy.sparse.linalg as spl
    import torch

    from accel.plugins.aas.model import PINN
    from accel.plugins.aas.problems import get_problem, laplacian

    torch.set_num_threads(1)
    ck = torch.load(args.checkpoint, weights_only=False)
    cfg = ck.get("config", {})
    prob = get_problem(cfg.get("problem", "peak2d"))
    if prob.dim != 2:
        p.error(f"{prob.name} is not 2D")
    model = PINN(prob.domain, cfg.get("width", 64), cfg.get("depth", 4), cfg.get("fourier", 0), cfg.get("sigma", 10.0),
                 hard_bc=cfg.get("boundary", "hard") == "hard").double()
    model.load_state_dict(ck["model"])
    (x0, y0), (x1, y1) = prob.domain.low, prob.domain.high
    gx, gy = np.linspace(x0, x1, args.grid), np.linspace(y0, y1, args.grid)
    hx, hy = gx[1] - gx[0], gy[1] - gy[0]
    X, Y = np.meshgrid(gx[1:-1], gy[1:-1], indexing="ij")
    x = np.stack([X.ravel(), Y.ravel()], 1)
    res, err = [], []
    for i in range(0, len(x), 20000):
        xt = torch.as_tensor(x[i:i + 20000]).requires_grad_(True)
        u, lap = laplacian(model, xt)
        res.append((lap.detach() + prob.source(xt)).numpy())
        err.append(u.detach().numpy() - prob.exact_numpy(x[i:i + 20000]))
    R, E = np.concatenate(res), np.concatenate(err)
    n = args.grid - 2
    d2 = [sp.diags([1, -2, 1], [-1, 0, 1], (n, n)) / h**2 for h in (hx, hy)]
    lu = spl.splu((sp.kron(d2[0], sp.identity(n)) + sp.kron(sp.identity(n), d2[1])).tocsc())
    u = prob.exact_numpy(x)
    peak = np.abs(u) > 0.01 * np.abs(u).max()
    rms = lambda v: float(np.sqrt(np.mean(v**2)))  # noqa: E731
    norm = rms(u)
    e_from_peak, e_from_bg = lu.solve(R * peak), lu.solve(R * ~peak)
    print(f"{prob.name}, {args.checkpoint}, {args.grid}^2 grid")
    print(f"rel L2 of e on the grid {rms(E) / norm:.3g}; "
          f"of the e solved from R {rms(e_from_peak + e_from_bg) / norm:.3g}")
    print(f"outside the peak, rel L2 of the part made by R inside the peak {rms(e_from_peak * ~peak) / norm:.3g}, "
          f"by R outside it {rms(e_from_bg * ~peak) / norm:.3g}")
    da = hx * hy
    print(f"R inside the peak: RMS {rms(R[peak]):.3g}, net {R[peak].sum() * da:.3g}, "
          f"|R| {np.abs(R[peak]).sum() * da:.3g};"
          f" outside: RMS {rms(R[~peak]):.3g}, net {R[~peak].sum() * da:.3g} (R divided by the problem's scale "
          f"{prob.residual_scale:g} is what the loss sees)")
    # the share of |e|^2 in the box's first sine modes (what the trainer's weak term sees, weak_modes = K)
    z = (x - prob.domain.center) / prob.domain.half_width
    vol = float(prob.domain.volume)
    for K in (8, 16, 32):
        k = np.arange(1, K + 1) * np.pi / 2
        sx, sy = np.sin((z[:, :1] + 1) * k), np.sin((z[:, 1:] + 1) * k)
        e_kl = (sx * E[:, None]).T @ sy * da * 2 / np.sqrt(vol)  # coordinates on the orthonormal modes
        print(f"share of |e|^2 in the sine modes k, l <= {K}: {(e_kl**2).sum() / ((E**2).sum() * da):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
