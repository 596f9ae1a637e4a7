"""``accel train dcdm``: train a DCDM network on a named problem, a family of random obstacle fields, or the user's
own operators (PETSc binary matrices), and export it to ONNX with its recipe."""
from __future__ import annotations

import argparse
import logging
import shlex

from accel.cliargs import add_force, int_list, nonnegative_int, positive_float, positive_int

from . import problems

log = logging.getLogger(__name__)


def _grid(text: str) -> tuple[int, ...]:
    """'NX,NY[,NZ]' (x first) -> C-ordered shape; an argparse error for anything else."""
    sizes = int_list(text)
    if len(sizes) not in (2, 3):
        raise argparse.ArgumentTypeError(f"{text!r} is not NX,NY or NX,NY,NZ")
    return tuple(reversed(sizes))


def add_train_command(train):
    p = train.add_parser("dcdm", help="train a DCDM preconditioner network and export it to ONNX",
                         description="Ritz vectors of each training operator (Lanczos), right-hand sides weighted toward "
                                     "the low spectrum, the scale-free DCDM loss through the two-grid cycle. Train on a "
                                     "named problem (--problem) or on your own operator family (--matrices).")
    p.add_argument("--problem", choices=problems.PROBLEMS, default=None,
                   help="named training problem (default poisson3d; random-obstacles*: a family of random obstacle "
                        "fields, see --members)")
    p.add_argument("--matrices", default=None, metavar="GLOB",
                   help="train on your own operators: PETSc binary matrices in natural order (x fastest), e.g. "
                        "'A_*.dat' as written by -ksp_view_mat binary:A_0.dat; needs --grid")
    p.add_argument("--name", default="custom", help="problem name stored in the model with --matrices")
    p.add_argument("--grid", type=_grid, default=None,
                   help="training grid NX,NY[,NZ] (default 64,64 in 2D, 32,32,32 in 3D; with --matrices the grid the "
                        "matrices live on)")
    p.add_argument("--members", type=positive_int, default=16,
                   help="random obstacle fields drawn for the random-obstacles problems (default 16)")
    p.add_argument("--out", required=True, help="ONNX file to write (refuses to overwrite unless --force)")
    add_force(p, "--out")
    p.add_argument("--width", type=positive_int, default=8, help="channels of the network")
    p.add_argument("--network", default="dcdm-unet", help="registered network name")
    p.add_argument("--coarse-blocks", type=positive_int, default=3)
    p.add_argument("--depth", type=positive_int, default=1,
                   help="pooled levels inside the network (grid multiple fine-pool*2^depth)")
    p.add_argument("--fine-pool", type=positive_int, default=2,
                   help="the network works at 1/fine-pool of the grid resolution")
    p.add_argument("--steps", type=positive_int, default=2000)
    p.add_argument("--batch", type=positive_int, default=8)
    p.add_argument("--lr", type=positive_float, default=2e-3)
    p.add_argument("--ritz", type=positive_int, default=256, help="Ritz vectors of the operator(s) for the right-hand sides")
    p.add_argument("--samples", type=positive_int, default=512)
    p.add_argument("--pre", type=nonnegative_int, default=2, help="Jacobi sweeps before the network")
    p.add_argument("--post", type=nonnegative_int, default=2, help="Jacobi sweeps after the network")
    p.add_argument("--omega", type=positive_float, default=0.67)
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument("--diagonal-input", action="store_true",
                   help="give the network the operator's diagonal as a second channel (walls, obstacles)")
    p.add_argument("--coefficient-input", action="store_true",
                   help="give the network the operator's coefficients as channels: the log of its diagonal and, per "
                        "axis, the coupling to the next grid layer over the diagonal (variable-coefficient families; "
                        "computed from the matrix at solve time too)")
    p.add_argument("--loss", choices=("residual", "energy"), default="residual",
                   help="residual: the DCDM paper's residual 2-norm after a line search; energy: the A-norm error "
                        "(exact solutions from one sparse LU; needed for Neumann-dominated operators)")
    p.add_argument("--unroll", type=positive_int, default=1,
                   help="with --loss energy: the loss after this many cycles of a steepest-descent iteration, so the "
                        "network also trains on the residuals its own corrections leave (default 1: one cycle)")
    p.add_argument("--interpolation", choices=("linear", "constant"), default=None,
                   help="grid transfer the PC's hierarchy should use with this model, stored in its metadata "
                        "(default: none stored, the PC uses linear)")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--log", default=None, help="JSON-lines training log (default: OUT with .log.jsonl)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_train, _parser=p)


def recipe_command(args, grid, out) -> str:
    """The full command that reproduces this model, whatever defaults or invocation were used."""
    source = ({"matrices": args.matrices, "name": args.name} if args.matrices else
              {"problem": args.problem, **({"members": args.members} if args.problem.startswith("random-") else {})})
    flags = {**source, "grid": ",".join(map(str, reversed(grid))), "network": args.network,
             "width": args.width, "depth": args.depth, "coarse-blocks": args.coarse_blocks,
             "fine-pool": args.fine_pool, "steps": args.steps,
             "batch": args.batch, "lr": args.lr, "ritz": args.ritz, "samples": args.samples, "pre": args.pre,
             "post": args.post, "omega": args.omega, "loss": args.loss, "unroll": args.unroll, "threads": args.threads,
             "seed": args.seed}
    parts = ["accel train dcdm"] + [f"--{k} {shlex.quote(str(v))}" for k, v in flags.items()]
    if args.diagonal_input:
        parts.append("--diagonal-input")
    if args.coefficient_input:
        parts.append("--coefficient-input")
    if args.interpolation:
        parts.append(f"--interpolation {args.interpolation}")
    return " ".join(parts + [f"--out {shlex.quote(str(out))}"])


def run_train(args) -> int:
    from accel.files import refuse_existing

    from .fit import fit, settings_from_args
    from .matrices import MatrixFileError, load_family

    parser = args._parser
    refuse_existing(args.out, force=args.force)
    if args.matrices and args.problem:
        parser.error("--problem and --matrices exclude each other: train on a named problem or on your matrices")
    if args.unroll > 1 and args.loss != "energy":
        parser.error("--unroll needs --loss energy (the unrolled loss is the energy error after the cycles)")
    operators = None
    if args.matrices:
        if args.grid is None:
            parser.error("--matrices needs --grid NX,NY[,NZ]: the grid the matrices were assembled on (x first)")
        grid = args.grid
        try:
            operators = load_family(args.matrices, grid)
        except (MatrixFileError, OSError) as exc:
            parser.error(str(exc))
    else:
        args.problem = args.problem or "poisson3d"
        dim = 3 if args.problem.endswith("3d") else 2
        grid = args.grid or ((32, 32, 32) if dim == 3 else (64, 64))
        if len(grid) != dim:
            parser.error(f"--grid {','.join(map(str, reversed(grid)))} has {len(grid)} sizes but {args.problem} is "
                         f"{dim}D")
    settings = settings_from_args(args, grid)
    recipe = recipe_command(args, grid, args.out)
    meta, history, log_path = fit(operators, args.out, recipe=recipe, force=args.force,
                                  interpolation=args.interpolation, log=args.log, progress=not args.no_progress,
                                  **settings)
    print(f"wrote {args.out} ({meta.dim}D {meta.problem}, final loss {history[-1]['smoothed']:.3e}; log {log_path})")
    return 0
