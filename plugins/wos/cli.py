"""``accel wos`` (point estimates from the command line) and ``accel train wos-no`` (argument parsing only)."""
from __future__ import annotations

import argparse
import json
import sys

from accel.cliargs import add_force, existing_file, positive_float, positive_int


def add_commands(commands) -> None:
    p = commands.top.add_parser("wos", help="Walk-on-Spheres estimates of a Laplace/Poisson solution at points",
                                description="Estimate u at points with Walk-on-Spheres for a named problem. Under "
                                "mpirun the walks are split over the ranks (same seed, same answer).")
    p.add_argument("--problem", default="disk-harmonic", help="named problem (see --list); default disk-harmonic")
    p.add_argument("--list", action="store_true", help="list the named problems and exit")
    p.add_argument("--points", help="inline points 'x,y;x,y' (or x,y,z for 3D problems)")
    p.add_argument("--points-file", type=existing_file, help=".npy file with an (n, dim) array of points")
    p.add_argument("--walks", type=positive_int, default=1000, help="walks per point (default 1000)")
    p.add_argument("--epsilon", type=positive_float, default=1e-3, help="stopping shell width (default 1e-3)")
    p.add_argument("--max-steps", type=positive_int, default=1000, help="jumps allowed per walk (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--on-overrun", choices=("warn", "raise"), default="warn",
                   help="what to do when walks hit --max-steps (they are always counted)")
    p.add_argument("--out", help="write value, stderr, overruns to this .npz file")
    add_force(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run_wos)

    t = commands.train.add_parser("wos-no", help="train an operator on Walk-on-Spheres targets vs physics-informed",
                                  description="WoS-NO recipe on the 2D star-shaped Poisson family: the same network "
                                  "regressed on WoS estimates (averaged across epochs) and trained physics-informed, "
                                  "for the same steps and the same wall time; relative L2 against DOLFINx references "
                                  "on held-out instances.")
    t.add_argument("--instances", type=positive_int, default=64, help="training instances (default 64)")
    t.add_argument("--test-instances", type=positive_int, default=8, help="held-out instances (default 8)")
    t.add_argument("--steps", type=positive_int, default=2000, help="optimiser steps (default 2000)")
    t.add_argument("--batch", type=positive_int, default=8, help="instances per step (default 8)")
    t.add_argument("--interior", type=positive_int, default=256, help="interior points per instance (default 256)")
    t.add_argument("--boundary", type=positive_int, default=128, help="boundary points per instance (default 128)")
    t.add_argument("--walks", type=positive_int, default=10, help="walks per point per epoch (default 10)")
    t.add_argument("--epsilon", type=positive_float, default=1e-3)
    t.add_argument("--max-steps", type=positive_int, default=25, help="WoS step limit (default 25, as in WoS-NO)")
    t.add_argument("--width", type=positive_int, default=64, help="hidden width (default 64)")
    t.add_argument("--depth", type=positive_int, default=4, help="hidden layers (default 4)")
    t.add_argument("--lr", type=positive_float, default=2e-3)
    t.add_argument("--boundary-weight", type=positive_float, default=10.0,
                   help="PINN boundary loss weight (default 10)")
    t.add_argument("--wos-boundary-weight", type=positive_float, default=1.0,
                   help="WoS-NO boundary loss weight (default 1)")
    t.add_argument("--pinn-points", choices=("redraw", "fixed"), default="redraw",
                   help="PINN collocation points: drawn afresh every step (default) or fixed per instance")
    t.add_argument("--no-normalize", action="store_true",
                   help="do not divide each instance's loss terms by its scale (mean f^2, t^2, g^2)")
    t.add_argument("--methods", default="wos,pinn,pinn-time",
                   help="comma list of wos, pinn (same steps), pinn-time (same wall time as wos)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    t.add_argument("--out", help="write the results table as JSON here")
    add_force(t)
    t.add_argument("--source-width", type=positive_float, default=0.2,
                   help="width sigma of the Gaussian sources (default 0.2); narrower ones keep their mass")
    t.add_argument("--fem-radial", type=positive_int, default=32,
                   help="radial cells of the DOLFINx P2 reference mesh (8x as many around; refine for narrow sources)")
    t.add_argument("--operator", choices=("mlp", "fno"), default="mlp",
                   help="the operator both methods train (a registered name): mlp = point-based MLP (default); "
                   "fno = FNO on a grid over the domains' bounding box (targets and residuals at interior nodes)")
    t.add_argument("--grid", type=positive_int, default=48, help="fno: grid nodes per axis (default 48)")
    t.add_argument("--fno-modes", type=positive_int, default=12, help="fno: Fourier modes per axis (default 12)")
    t.add_argument("--fno-width", type=positive_int, default=32, help="fno: channels (default 32)")
    t.add_argument("--fno-layers", type=positive_int, default=4, help="fno: spectral layers (default 4)")
    t.add_argument("--wos-cache", help="folder keeping the WoS targets of each epoch between runs (same walks, "
                   "read back instead of walked again)")
    t.add_argument("--no-features", action="store_true",
                   help="feed only (parameters, x, y), not the source and boundary extension at x")
    t.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    t.set_defaults(func=run_train, _parser=t)


def _parse_points(args, dim):
    import numpy as np

    if args.points_file:
        P = np.load(args.points_file)
    elif args.points:
        try:
            P = np.array([[float(v) for v in row.split(",")] for row in args.points.split(";") if row.strip()])
        except ValueError:
            raise SystemExit(f"accel wos: cannot read --points {args.points!r}: write 'x,y;x,y' (numbers only)")
    else:
        P = np.zeros((1, dim))
    return P


def run_wos(args) -> int:
    import numpy as np

    from accel.errors import AccelError

    from .estimator import WalkOnSpheres, WoSSettings
    from .problems import _named, get_problem

    if args.list:
        for name, make in _named().items():
            p = make()
            print(f"{name:<20} {p.domain.dim}D  {p.summary}")
        return 0
    comm = None
    try:
        from mpi4py import MPI

        if MPI.COMM_WORLD.size > 1:
            comm = MPI.COMM_WORLD
    except ImportError:
        pass
    rank = comm.rank if comm is not None else 0
    try:
        if args.out:  # every rank sees the same file system: they all agree
            from accel.files import refuse_existing

            refuse_existing(args.out, force=args.force)
        prob = get_problem(args.problem)
        P = _parse_points(args, prob.domain.dim)
        settings = WoSSettings(epsilon=args.epsilon, walks=args.walks, max_steps=args.max_steps, seed=args.seed,
                               dtype=args.dtype, on_overrun=args.on_overrun)
        res = WalkOnSpheres(prob.domain, prob.boundary, prob.source, settings, comm=comm).solve(P)
    except (AccelError, ValueError, KeyError) as exc:
        if rank == 0:
            print(f"accel wos: error: {exc}", file=sys.stderr)
        return 2
    if rank != 0:
        return 0
    exact = prob.exact(P) if prob.exact is not None else None
    if args.out:
        from accel.files import atomic_output

        with atomic_output(args.out, force=args.force) as tmp, open(tmp, "wb") as f:
            np.savez(f, points=P, value=res.value, stderr=res.stderr, overruns=res.overruns)
    if args.json:
        out = {"problem": prob.name, "points": P.tolist(), "value": res.value.tolist(),
               "stderr": res.stderr.tolist(), "overruns": res.overruns.tolist(), "steps": res.steps,
               "seconds": res.seconds, "ranks": comm.size if comm else 1}
        if exact is not None:
            out["exact"] = exact.tolist()
        print(json.dumps(out))
        return 0
    head = f"{'point':<28} {'estimate':>12} {'stderr':>10} {'overruns':>8}" + (f" {'exact':>12}" if exact is not None
                                                                                else "")
    print(head)
    for i in range(len(P)):
        row = f"{str(np.round(P[i], 4).tolist()):<28} {res.value[i]:>12.6f} {res.stderr[i]:>10.2e} {res.overruns[i]:>8d}"
        if exact is not None:
            row += f" {exact[i]:>12.6f}"
        print(row)
    print(f"# {res.walks} walks/point, {res.steps} steps in {res.seconds:.3f} s "
          f"({res.steps / max(res.seconds, 1e-12) / 1e6:.2f} M steps/s, rank 0), ranks={comm.size if comm else 1}")
    return 0


def run_train(args) -> int:
    from accel.files import refuse_existing

    from .wosno.train import check_methods, run_from_args

    try:  # before minutes of reference solves and training
        check_methods(tuple(m.strip() for m in args.methods.split(",") if m.strip()))
    except ValueError as exc:
        args._parser.error(f"--methods: {exc}")
    if args.operator == "fno" and args.grid < 8:
        args._parser.error(f"--grid {args.grid}: the fno operator needs at least 8 nodes per axis")
    if args.out:
        refuse_existing(args.out, force=args.force)

    return run_from_args(args)
