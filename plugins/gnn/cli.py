"""``accel train gnn``: train the factor network on the user's own operators (PETSc binary matrices)."""
from __future__ import annotations

import argparse
import glob
import shlex
from pathlib import Path

from accel.cliargs import add_force, nonnegative_int, positive_float, positive_int


class MatrixGlob(list):
    """The files a ``--matrices`` pattern matched (the pattern is kept for the recipe)."""

    def __init__(self, pattern: str, files: list[str]):
        super().__init__(files)
        self.pattern = pattern


def matrix_files(pattern: str) -> MatrixGlob:
    """argparse type: the files matching a glob, each checked to start like a PETSc binary matrix."""
    from accel.matrixio import MAT_FILE_CLASSID

    files = sorted(glob.glob(pattern))
    if not files:
        raise argparse.ArgumentTypeError(f"{pattern!r} matches no file; quote the pattern so the shell does not "
                                         "expand it, and check the folder")
    for f in files:
        path = Path(f)
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"{f} (matched by {pattern!r}) is a folder, not a matrix file")
        with open(path, "rb") as fh:
            head = fh.read(4)
        if len(head) < 4 or int.from_bytes(head, "big") != MAT_FILE_CLASSID:
            raise argparse.ArgumentTypeError(f"{f} is not a PETSc binary matrix; write one with "
                                             "-ksp_view_mat binary:FILE (or MatView with a binary viewer)")
    return MatrixGlob(pattern, files)


def add_train_command(train):
    from .graph import PATTERNS
    from .train import LOSSES, TrainConfig

    NETWORKS = ("gated", "mlp")  # network.NETWORKS, without importing torch for the command line
    d = TrainConfig()
    p = train.add_parser("gnn", help="train the gnn factor network on your own SPD matrices and export it to ONNX",
                         description="Learns a sparse approximate inverse G^T G (G on tril(A)) for a family of SPD "
                                     "matrices; PETSc binary files as written by -ksp_view_mat binary:A_0.dat.")
    p.add_argument("--matrices", type=matrix_files, action="append", required=True, metavar="GLOB",
                   help="PETSc binary matrices to train on (quote the pattern; repeat the flag for several)")
    p.add_argument("--out", required=True, help="ONNX file to write")
    add_force(p, "--out")
    p.add_argument("--hidden", type=positive_int, default=d.hidden, help="width of the node states")
    p.add_argument("--layers", type=positive_int, default=d.layers,
                   help="message-passing steps (receptive field: layers + 1 rings; each rank reads as many rings)")
    p.add_argument("--network", choices=NETWORKS, default=d.network,
                   help="architecture: 'gated' (messages linear in the neighbour's state, gated by the edge; the "
                        "cheaper one) or 'mlp' (a perceptron per edge)")
    p.add_argument("--width", type=positive_int, default=d.width, help="gated: channels per message")
    p.add_argument("--rank", type=positive_int, default=d.rank, help="gated: bilinear terms of the output")
    p.add_argument("--steps", type=positive_int, default=d.steps)
    p.add_argument("--lr", type=positive_float, default=d.lr)
    p.add_argument("--loss", choices=LOSSES, default=d.loss, help="see 'accel.plugins.gnn.train'")
    p.add_argument("--probes", type=positive_int, default=d.probes, help="probe vectors per step")
    p.add_argument("--cycles", type=nonnegative_int, default=d.cycles,
                   help="twogrid loss: two-grid cycles applied to the probes first (no gradient), so the loss sees "
                        "the slowest modes (0: the probes as drawn)")
    p.add_argument("--smoothing", type=int, default=d.smoothing, help="Jacobi sweeps making the smooth probes")
    p.add_argument("--problem", default="spd-scalar",
                   help="problem kind stored in the model (a PC asked for another kind refuses it)")
    p.add_argument("--pattern", choices=PATTERNS, default=d.pattern,
                   help="the factor's pattern: tril(A) ('a') or tril(A^2) ('a2', the graph with distance-2 edges)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--threads", type=positive_int, default=d.threads)
    p.add_argument("--data-recipe", default="", help="the command that made the matrices (kept in the recipe)")
    p.add_argument("--log", default=None, help="JSON-lines training log (default: OUT with .log.jsonl)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_train)


def recipe_command(args, patterns) -> str:
    flags = {"network": args.network, "hidden": args.hidden, "layers": args.layers, "steps": args.steps, "lr": args.lr,
             "loss": args.loss, "probes": args.probes, "smoothing": args.smoothing, "problem": args.problem,
             "seed": args.seed, "threads": args.threads, "pattern": args.pattern}
    if args.loss == "twogrid":
        flags["cycles"] = args.cycles
    if args.network == "gated":
        flags.update(width=args.width, rank=args.rank)
    parts = ["accel train gnn"] + [f"--matrices {shlex.quote(p)}" for p in patterns]
    parts += [f"--{k} {shlex.quote(str(v))}" for k, v in flags.items()]
    cmd = " ".join(parts + [f"--out {shlex.quote(str(args.out))}"])
    return f"{args.data_recipe} && {cmd}" if args.data_recipe else cmd


def _checked(path: str, A):
    """The matrix, or an error naming its file when it cannot take an SPD factor (non-square, non-symmetric, bad
    diagonal, NaN/Inf)."""
    import numpy as np

    from accel.errors import AccelError

    from .graph import Block, OperatorError, check_symmetric, diagonal_and_checks

    if A.shape[0] != A.shape[1]:
        raise AccelError(f"{path} is a {A.shape[0]}x{A.shape[1]} matrix; the gnn preconditioner trains on square SPD "
                         "matrices")
    block = Block.from_scipy(A)
    try:
        diagonal_and_checks(block)
        check_symmetric(block, np.arange(A.shape[0]))
    except OperatorError as exc:
        raise AccelError(f"{path}: {exc}") from None
    return A


def run_train(args) -> int:
    from accel.files import refuse_existing
    from accel.matrixio import read_petsc_matrix

    from .export import export
    from .graph import Block, padded_graph
    from .train import TrainConfig, train

    out = Path(args.out)
    log_path = Path(args.log) if args.log else out.with_suffix(".log.jsonl")
    refuse_existing(out, log_path, force=args.force)
    files = [f for group in args.matrices for f in group]
    matrices = [_checked(f, read_petsc_matrix(f)) for f in files]
    cfg = TrainConfig(hidden=args.hidden, layers=args.layers, steps=args.steps, lr=args.lr, loss=args.loss,
                      probes=args.probes, smoothing=args.smoothing, seed=args.seed, threads=args.threads,
                      pattern=args.pattern, network=args.network, width=args.width, rank=args.rank,
                      cycles=args.cycles)
    net, history = train(matrices, cfg, log_path=log_path, progress=not args.no_progress)
    recipe = recipe_command(args, [group.pattern for group in args.matrices])
    smallest = min(matrices, key=lambda A: A.shape[0])
    export(net, out, recipe, problem=args.problem, trained_on=f"{len(files)} matrices", pattern=args.pattern,
           check=padded_graph(Block.from_scipy(smallest), pattern=args.pattern), force=args.force)
    print(f"wrote {out} (final loss {history[-1]['smoothed']:.3e}; log {log_path})")
    return 0
