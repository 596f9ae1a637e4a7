"""``accel train pinn``: train a PINN with a chosen sampler; logs, plots, ONNX export and the PETSc hand-back."""
from __future__ import annotations

import json
import shlex
import sys

from accel.cliargs import add_force, nonnegative_int, positive_float, positive_int

# the weak term's defaults per sampler on 2D problems with the hard boundary: (weight, first Adam stage as a share of
# the stages), each the sampler's best on the 2D peak (docs/benchmarks/aas.md, third and fourth passes; rar-d sums the
# term over its uniform rows only). Others get none: its Monte Carlo sums need uniform or importance-weighted points
# (rad takes the plain mean by default).
WEAK_DEFAULTS = {"uniform": (3.0, 0.0), "aas": (0.1, 0.7), "rar-d": (3.0, 0.7)}


def _parse_options(items):
    """KEY=VALUE pairs (values read as JSON when they parse, else kept as strings)."""
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--sampler-opt takes KEY=VALUE, got {item!r}")
        try:
            out[key.replace("-", "_")] = json.loads(value)
        except ValueError:
            out[key.replace("-", "_")] = value
    return out


def add_train_command(train):
    from .problems import PROBLEMS

    p = train.add_parser("pinn", help="train a physics-informed network with a collocation sampler (uniform, rad, "
                                      "rar-d, aas or a third-party one)")
    p.add_argument("--problem", default="peak2d", choices=sorted(PROBLEMS))
    p.add_argument("--sampler", default="aas", help="sampler component name ('accel plugins' lists them)")
    p.add_argument("--sampler-opt", action="append", metavar="KEY=VALUE", help="sampler option, repeatable "
                   "(aas: uniform_fraction, flow_steps, flow_lr, temper, ...)")
    p.add_argument("--points", type=positive_int, default=1000, help="collocation points per Adam step")
    p.add_argument("--steps", type=positive_int, default=5000, help="Adam steps")
    p.add_argument("--stages", type=positive_int, default=10,
                   help="sampling stages (the sampler is refreshed between them)")
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--lr-final", type=positive_float, default=1e-5)
    p.add_argument("--schedule", default="cosine", choices=["cosine", "exp", "constant"], help="lr decay to --lr-final")
    p.add_argument("--resample", default="step", choices=["step", "stage"],
                   help="step: fresh --points every --resample-every steps from the stage's pool; stage: one set per "
                        "stage")
    p.add_argument("--resample-every", type=positive_int, default=None,
                   help="steps that share one set of points (default: the sampler's own: uniform and rar-d 1, rad and "
                        "aas 50)")
    p.add_argument("--boundary", default="hard", choices=["hard", "soft"],
                   help="hard: u = d(x) NN(x); soft: boundary loss weighted by --bc-weight")
    p.add_argument("--bc-weight", default="1", help="soft boundary weight, a number or 'auto' (gradient balancing)")
    p.add_argument("--lbfgs-steps", type=nonnegative_int, default=1000,
                   help="L-BFGS iterations after Adam, over all rounds (0: none)")
    p.add_argument("--lbfgs-points", type=positive_int, default=4000, help="points of each L-BFGS round's set")
    p.add_argument("--lbfgs-rounds", type=positive_int, default=4,
                   help="L-BFGS rounds, each on a fresh set (half uniform, half from the sampler)")
    p.add_argument("--weak-weight", default="auto",
                   help="weight of the weak (sine-mode, H^-1) term, a number or 'auto' (on 2D problems with the hard "
                        "boundary: aas 0.1, uniform 3, rar-d 3, else 0: measured in docs/benchmarks/aas.md)")
    p.add_argument("--weak-adam-from", default="auto",
                   help="first Adam stage with the weak term, a stage number or 'auto' (uniform 0, else 7/10 of "
                        "--stages: from stage 0 it kept aas from learning the peak); the L-BFGS polish always "
                        "has it")
    p.add_argument("--no-weak-adam", action="store_true", help="the weak term in the L-BFGS polish only")
    p.add_argument("--width", type=positive_int, default=64)
    p.add_argument("--depth", type=positive_int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads (keep 1 on shared machines)")
    p.add_argument("--out", default=None, help="output folder (default runs/pinn-PROBLEM-SAMPLER-sSEED); a folder "
                                               "that holds files is refused unless --force")
    add_force(p, "the files of an existing --out folder")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--export", action="store_true", help="write OUT/pinn.onnx with accel metadata")
    p.add_argument("--handback", type=nonnegative_int, default=0, metavar="N",
                   help="(2D) after export, use the PINN as initial guess of a PETSc CG solve on an NxN P1 mesh")
    p.add_argument("--pc", default="none", help="PETSc PC of the hand-back solve")
    p.set_defaults(func=run_train)


def run_train(args) -> int:
    from pathlib import Path

    import torch

    from .errors import DomainError, SamplerError, TrainingDiverged
    from .trainer import TrainConfig, Trainer

    if args.bc_weight != "auto":
        try:
            bc_weight = float(args.bc_weight)
        except ValueError:
            raise SystemExit(f"--bc-weight takes a positive number or 'auto', got {args.bc_weight!r}")
    else:
        bc_weight = "auto"
    from .problems import get_problem

    weak_auto = args.sampler in WEAK_DEFAULTS and get_problem(args.problem).dim == 2 and args.boundary == "hard"
    auto_weight, auto_from = WEAK_DEFAULTS[args.sampler] if weak_auto else (0.0, 0.7)
    if args.weak_weight == "auto":
        weak_weight = auto_weight
    else:
        try:
            weak_weight = float(args.weak_weight)
        except ValueError:
            raise SystemExit(f"--weak-weight takes a number >= 0 or 'auto', got {args.weak_weight!r}")
        if not weak_weight >= 0:
            raise SystemExit(f"--weak-weight takes a number >= 0 or 'auto', got {args.weak_weight!r}")
    if args.weak_adam_from == "auto":
        weak_adam_from = int(round(auto_from * args.stages))
    else:
        try:
            weak_adam_from = int(args.weak_adam_from)
        except ValueError:
            weak_adam_from = -1
        if weak_adam_from < 0:
            raise SystemExit(f"--weak-adam-from takes a stage number >= 0 or 'auto', got {args.weak_adam_from!r}")
    torch.set_num_threads(max(1, args.threads))

    out = Path(args.out or f"runs/pinn-{args.problem}-{args.sampler}-s{args.seed}")
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):  # an empty folder holds no one's results
        from accel.files import refuse_existing

        refuse_existing(out, force=args.force)
    cfg = TrainConfig(problem=args.problem, sampler=args.sampler, points=args.points, steps=args.steps,
                      stages=args.stages, lr=args.lr, lr_final=args.lr_final, schedule=args.schedule,
                      resample=args.resample, resample_every=args.resample_every, boundary=args.boundary,
                      bc_weight=bc_weight,
                      lbfgs_steps=args.lbfgs_steps, lbfgs_points=args.lbfgs_points, lbfgs_rounds=args.lbfgs_rounds,
                      weak_weight=weak_weight, weak_adam=not args.no_weak_adam, weak_adam_from=weak_adam_from,
                      width=args.width, depth=args.depth, seed=args.seed,
                      sampler_options=_parse_options(args.sampler_opt), out_dir=str(out), progress=True)
    try:
        result = Trainer(cfg).run()
    except TrainingDiverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (DomainError, SamplerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m = result.metrics
    print(f"{args.problem} / {args.sampler}: rel L2 {m['rel_l2']:.4g}, peak rel L2 {m['peak_rel_l2']:.4g}, "
          f"background {m['background_rel_l2']:.3g} of |u| (RMS {m['background_rms']:.3g}), {m['steps']} steps "
          f"in {m['wall_s']:.1f} s, "
          f"{m['rejected']} points rejected; logs in {out}")
    if not args.no_plots:
        from .plots import plot_error, plot_samples

        plot_samples(result, out / "samples.png")
        plot_error(result, out / "error.png")
    if args.export or args.handback:
        from .export import export_onnx

        recipe = "accel train pinn " + " ".join(shlex.quote(a) for a in sys.argv[3:]) if len(sys.argv) > 3 else ""
        path = export_onnx(result.model, out / "pinn.onnx", result.problem, recipe=recipe,
                           settings={"sampler": args.sampler, "metrics": m})
        print(f"exported {path}")
        if args.handback:
            from .handback import handback

            hb = handback(path, n=args.handback, pc=args.pc)
            print(f"PETSc CG (pc {hb.pc}, rtol {hb.rtol:g}) on {hb.dofs} P1 dofs: {hb.its_zero} iterations from zero, "
                  f"{hb.its_guess} from the PINN guess (saved {hb.saved}); guess error vs FE solution {hb.guess_rel_err:.3g}")
            (out / "handback.json").write_text(json.dumps(hb.__dict__ | {"saved": hb.saved}, indent=2))
    return 0
