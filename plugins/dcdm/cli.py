"""``accel train dcdm``: train a DCDM network on a named problem and export it to ONNX with its recipe."""
from __future__ import annotations

import logging
import shlex
from pathlib import Path

from accel.errors import AccelError

from . import problems

log = logging.getLogger(__name__)


def _grid(text: str) -> tuple[int, ...]:
    """'NX,NY[,NZ]' (x first) -> C-ordered shape."""
    return tuple(reversed([int(s) for s in text.split(",")]))


def add_train_command(train):
    p = train.add_parser("dcdm", help="train a DCDM preconditioner network and export it to ONNX",
                         description="Ritz vectors of the problem's matrix (Lanczos), right-hand sides weighted toward "
                                     "the low spectrum, the scale-free DCDM loss through the two-grid cycle.")
    p.add_argument("--problem", choices=problems.PROBLEMS, default="poisson3d")
    p.add_argument("--grid", default=None, help="training grid NX,NY[,NZ] (default 64,64 in 2D, 32,32,32 in 3D)")
    p.add_argument("--out", required=True, help="ONNX file to write (refuses to overwrite unless --force)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--width", type=int, default=8, help="channels of the network")
    p.add_argument("--network", default="dcdm-unet", help="registered network name")
    p.add_argument("--coarse-blocks", type=int, default=3)
    p.add_argument("--depth", type=int, default=1, help="pooled levels inside the network (grid multiple fine-pool*2^depth)")
    p.add_argument("--fine-pool", type=int, default=2, help="the network works at 1/fine-pool of the grid resolution")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--ritz", type=int, default=256, help="Ritz vectors of the operator for the right-hand sides")
    p.add_argument("--samples", type=int, default=512)
    p.add_argument("--pre", type=int, default=2, help="Jacobi sweeps before the network")
    p.add_argument("--post", type=int, default=2, help="Jacobi sweeps after the network")
    p.add_argument("--omega", type=float, default=0.67)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--diagonal-input", action="store_true",
                   help="give the network the operator's diagonal as a second channel (walls, obstacles)")
    p.add_argument("--loss", choices=("residual", "energy"), default="residual",
                   help="residual: the DCDM paper's residual 2-norm after a line search; energy: the A-norm error "
                        "(exact solutions from one sparse LU; needed for Neumann-dominated operators)")
    p.add_argument("--interpolation", choices=("linear", "constant"), default=None,
                   help="grid transfer the PC's hierarchy should use with this model, stored in its metadata "
                        "(default: none stored, the PC uses linear)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log", default=None, help="JSON-lines training log (default: OUT with .log.jsonl)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_train)


def recipe_command(args, grid, out) -> str:
    """The full command that reproduces this model, whatever defaults or invocation were used."""
    flags = {"problem": args.problem, "grid": ",".join(map(str, reversed(grid))), "network": args.network,
             "width": args.width, "depth": args.depth, "coarse-blocks": args.coarse_blocks,
             "fine-pool": args.fine_pool, "steps": args.steps,
             "batch": args.batch, "lr": args.lr, "ritz": args.ritz, "samples": args.samples, "pre": args.pre,
             "post": args.post, "omega": args.omega, "loss": args.loss, "threads": args.threads, "seed": args.seed}
    parts = ["accel train dcdm"] + [f"--{k} {shlex.quote(str(v))}" for k, v in flags.items()]
    if args.diagonal_input:
        parts.append("--diagonal-input")
    if args.interpolation:
        parts.append(f"--interpolation {args.interpolation}")
    return " ".join(parts + [f"--out {shlex.quote(str(out))}"])


def run_train(args) -> int:
    from .export import export
    from .train import TrainConfig, train

    out = Path(args.out)
    if out.exists() and not args.force:
        raise AccelError(f"{out} exists; pass --force to overwrite it or choose another --out")
    dim = 3 if args.problem.endswith("3d") else 2
    grid = _grid(args.grid) if args.grid else ((32, 32, 32) if dim == 3 else (64, 64))
    if len(grid) != dim:
        raise AccelError(f"--grid {args.grid} has {len(grid)} sizes but {args.problem} is {dim}D")
    cfg = TrainConfig(problem=args.problem, grid=grid, network=args.network, width=args.width, depth=args.depth,
                      coarse_blocks=args.coarse_blocks,
                      fine_pool=args.fine_pool, ritz=args.ritz, samples=args.samples, batch=args.batch,
                      steps=args.steps, lr=args.lr, pre=args.pre, post=args.post, omega=args.omega, seed=args.seed,
                      threads=args.threads, diagonal_input=args.diagonal_input, loss=args.loss)
    log_path = Path(args.log) if args.log else out.with_suffix(".log.jsonl")
    net, history = train(cfg, log_path=log_path, progress=not args.no_progress)
    recipe = recipe_command(args, grid, out)
    checks = [grid, tuple(2 * n for n in grid)] if dim == 2 else [grid]
    cycle = {"pre": args.pre, "post": args.post, "omega": args.omega}
    if args.interpolation:
        cycle["interpolation"] = args.interpolation
    export(net, out, args.problem, grid, cycle, recipe,
           check_grids=checks)
    print(f"wrote {out} (final loss {history[-1]['smoothed']:.3e}; log {log_path})")
    return 0
