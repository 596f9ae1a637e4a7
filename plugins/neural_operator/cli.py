"""``accel data``, ``accel train fno``, ``accel finetune`` and ``accel predict``: the plugin's commands.

Argument parsing only; the work is in the data / training / surrogate modules, imported when a command runs.
"""
from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def add_commands(commands) -> None:
    _add_data(commands.top)
    _add_train(commands.train)
    _add_finetune(commands.top)
    _add_predict(commands.top)


# -- accel data ------------------------------------------------------------------------------------------------------
def _add_data(top) -> None:
    p = top.add_parser("data", help="generate neural-operator training data with the project's own solvers")
    sub = p.add_subparsers(dest="family", metavar="FAMILY")
    d = sub.add_parser("darcy", help="-div(a grad u) = 1 on the unit square, random coefficient, PETSc CG+GAMG")
    d.add_argument("--n", type=int, default=1000, help="number of samples")
    d.add_argument("--grid", type=int, default=64, help="cells per side")
    d.add_argument("--kind", choices=("piecewise", "lognormal"), default="piecewise", help="coefficient family")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--out", required=True, help="output file (NAME.npz; NAME.json is written next to it)")
    d.set_defaults(func=_cmd_data_darcy)
    n = sub.add_parser("ns", help="2D Navier-Stokes vorticity trajectories (pseudo-spectral, periodic square)")
    n.add_argument("--n", type=int, default=200, help="number of trajectories")
    n.add_argument("--grid", type=int, default=64, help="output grid per side")
    n.add_argument("--solver-grid", type=int, default=0, help="solver grid per side (a multiple of --grid; 0: same)")
    n.add_argument("--nu", type=float, default=1e-3, help="viscosity")
    n.add_argument("--T", type=float, default=50.0, help="final time")
    n.add_argument("--record-dt", type=float, default=1.0, help="time between recorded snapshots")
    n.add_argument("--dt", type=float, default=1e-2, help="solver time step")
    n.add_argument("--forcing", choices=("kolmogorov", "none"), default="kolmogorov",
                   help="kolmogorov: 0.1(sin 2pi(x+y) + cos 2pi(x+y)); none: decaying turbulence")
    n.add_argument("--seed", type=int, default=0)
    n.add_argument("--batch", type=int, default=50, help="trajectories integrated together")
    n.add_argument("--threads", type=int, default=1, help="torch threads")
    n.add_argument("--out", required=True, help="output file (NAME.npz; NAME.json is written next to it)")
    n.set_defaults(func=_cmd_data_ns)


def _generate(family, params, out, make, total):
    from tqdm import tqdm

    from .data import store

    if store.reusable(out, family, params):
        print(f"{store.paths(out)[0]} already holds this data set (same parameters, checksum OK): reusing it")
        return 0
    with tqdm(total=total, desc=f"{family} data", unit="sample") as bar:
        arrays, extra = make(bar)
    path = store.save(out, family, params, arrays, extra)
    print(f"wrote {path} ({', '.join(f'{k} {v.shape}' for k, v in arrays.items())}) and {path.with_suffix('.json')}")
    return 0


def _cmd_data_darcy(args) -> int:
    from .data import darcy

    params = dict(n=args.n, grid=args.grid, kind=args.kind, seed=args.seed)

    def make(bar):
        return darcy.generate(args.n, args.grid, args.kind, args.seed, progress=lambda: bar.update(1)), \
            {"equation": "-div(a grad u) = 1, u = 0 on the boundary, cell-centred FV", "solver": "PETSc CG+GAMG rtol 1e-10"}

    return _generate("darcy", params, args.out, make, args.n)


def _cmd_data_ns(args) -> int:
    import torch

    from .data import navier_stokes

    torch.set_num_threads(args.threads)
    params = dict(n=args.n, grid=args.grid, solver_grid=args.solver_grid or args.grid, nu=args.nu, T=args.T,
                  record_dt=args.record_dt, dt=args.dt, forcing=args.forcing, seed=args.seed, batch=args.batch)

    def make(bar):
        arrays = navier_stokes.generate(params["n"], params["grid"], params["solver_grid"], args.nu, args.T,
                                        args.record_dt, args.dt, args.forcing, args.seed, args.batch,
                                        progress=bar.update)
        times = [args.record_dt * (i + 1) for i in range(arrays["w"].shape[1])]
        return arrays, {"equation": "vorticity NS, periodic unit square", "times": times}

    return _generate("navier_stokes", params, args.out, make, args.n)


# -- accel train fno / accel finetune / accel predict: filled in below -------------------------------------------------
def _add_train(train) -> None:
    pass


def _add_finetune(top) -> None:
    pass


def _add_predict(top) -> None:
    pass
