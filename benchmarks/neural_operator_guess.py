"""Sweep of Darcy problems solved to rtol 1e-8 (||b - A x|| <= 1e-8 ||b||) with CG + GAMG, CG + ICC and the
neural PC (any configuration name of accel.integrations.petsc.solvers, e.g. fcg2+neural-sor, in --pcs):
cold start vs an FNO initial guess (ONNX Runtime, one thread) vs a classical guess of similar cost (the solution of
the constant-coefficient problem scaled by 1/mean(a): the ablation row).

    python benchmarks/neural_operator_guess.py --model runs/neural_operator/darcy_logn_fno.onnx --n 50

Times are per solve, summed over the sweep: KSP set-up (GAMG hierarchy / ICC factor) + solve, plus for the guessed
solves the surrogate inference and the guess check (one MatMult). The ONNX session is built once (reported apart).
Coefficients are drawn with a seed the training data never used.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--n", type=int, default=50, help="parameter values (coefficient fields) in the sweep")
    p.add_argument("--grid", type=int, default=64)
    p.add_argument("--kind", default="lognormal", choices=("lognormal", "piecewise"))
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--pcs", default="gamg,icc",
                   help="comma-separated: PETSc PC types (with CG) or solver configuration names such as "
                        "fcg2+neural-sor (the neural PC on the grid of the problem)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rtol", type=float, default=1e-8)
    p.add_argument("--norm", default="unpreconditioned", choices=("unpreconditioned", "preconditioned"),
                   help="the residual norm rtol applies to (PETSc's CG default is preconditioned)")
    p.add_argument("--smooth", type=int, default=0,
                   help="also run 'fno+sor': the FNO guess followed by this many symmetric SOR sweeps (a test of "
                        "whether the guess's high-wavenumber error is what costs iterations)")
    p.add_argument("--json", help="write the per-solve records here")
    args = p.parse_args(argv)

    from petsc4py import PETSc

    from accel.integrations.petsc.guess import attach_guess
    from accel.integrations.petsc.solvers import CONFIGS
    from accel.plugins.neural_operator.data import darcy
    from accel.plugins.neural_operator.surrogate import Surrogate

    t0 = time.perf_counter()
    sur = Surrogate(args.model, problem="darcy", threads=args.threads)
    sur.predict(np.ones((args.grid, args.grid), np.float32))  # warm-up
    session_s = time.perf_counter() - t0
    u_one, _ = darcy.solve(np.ones((args.grid, args.grid)), rtol=1e-12)  # for the classical guess
    classical = lambda a: u_one / a.mean()  # noqa: E731
    rng = np.random.default_rng(args.seed)
    opts = PETSc.Options()
    records, fields = [], []
    for s in range(args.n):
        a = darcy.coefficient(rng, args.grid, args.kind)
        fields.append(a)
        A = darcy.petsc_matrix(darcy.assemble(a))
        A.setOption(PETSc.Mat.Option.SPD, True)
        b, x = A.createVecLeft(), A.createVecRight()
        b.set(1.0)
        u_ref = None
        modes = [("cold", None), ("fno", sur), ("classical", classical)] + ([("fno+sor", sur)] if args.smooth else [])
        for pc in args.pcs.split(","):
            for mode, guess in modes:
                ksp = PETSc.KSP().create(PETSc.COMM_SELF)
                ksp.setOperators(A)
                if pc in CONFIGS:  # a named configuration, read from the options database under a private prefix
                    prefix = f"nog{len(records)}_"
                    named = {**CONFIGS[pc], "accel_grid": f"{args.grid},{args.grid}"}
                    for key, value in named.items():
                        opts[prefix + key] = value
                    ksp.setOptionsPrefix(prefix)
                    ksp.setFromOptions()
                    for key in named:
                        opts.delValue(prefix + key)
                else:
                    ksp.setType("cg")
                    ksp.getPC().setType(pc)
                ksp.setNormType(getattr(PETSc.KSP.NormType, args.norm.upper()))
                ksp.setTolerances(rtol=args.rtol, atol=0.0, max_it=10000)
                x.zeroEntries()
                t = time.perf_counter()
                rep = attach_guess(ksp, guess, a, b, x) if guess is not None else None
                if mode == "fno+sor" and rep.used:
                    A.SOR(b, x, sortype=PETSc.Mat.SORType.SYMMETRY_SWEEP, its=args.smooth)
                t_guess = time.perf_counter() - t
                if mode == "fno+sor":  # the residual the solve actually starts from (not timed)
                    r = b.duplicate()
                    A.mult(x, r)
                    r.aypx(-1.0, b)
                    smoothed_residual = r.norm() / b.norm()
                    r.destroy()
                ksp.solve(b, x)
                total = time.perf_counter() - t
                if ksp.getConvergedReason() <= 0:
                    raise RuntimeError(f"sample {s} {pc} {mode}: not converged ({ksp.getConvergedReason()})")
                if u_ref is None:
                    u_ref = x.getArray().copy()
                rec = {"sample": s, "pc": pc, "mode": mode, "its": ksp.getIterationNumber(), "total_s": total,
                       "guess_s": t_guess}
                if rep is not None:
                    rec.update(guess_residual=rep.residual, used=rep.used, predict_s=rep.predict_seconds,
                               scale=rep.scale)
                if mode == "fno+sor":
                    rec["guess_residual"] = smoothed_residual
                records.append(rec)
                ksp.destroy()
        # the FNO's accuracy on this sample (relative L2 vs the converged solve), kept on its last "fno" record
        pred = sur.predict(a).ravel()
        fno_rec = next(r for r in reversed(records) if r["mode"] == "fno")
        fno_rec["rel_l2"] = float(np.linalg.norm(pred - u_ref) / np.linalg.norm(u_ref))
        A.destroy()
        b.destroy()
        x.destroy()
    print(f"Darcy {args.kind} {args.grid}x{args.grid}, {args.n} coefficient fields, rtol {args.rtol:g} ({args.norm} norm), "
          f"ONNX session build + warm-up {session_s * 1e3:.0f} ms (once)")
    # the whole sweep's inputs in one ONNX Runtime call: does batching lower the cost per field? (CPU: no)
    batch = np.stack(fields)[:, None].astype(np.float32)
    t = time.perf_counter()
    sur.predict(batch)
    batched_ms = (time.perf_counter() - t) / args.n * 1e3
    single_ms = np.mean([r["predict_s"] for r in records if r["mode"] == "fno"]) * 1e3
    print(f"FNO inference per field: {single_ms:.2f} ms one at a time, {batched_ms:.2f} ms in one call for all {args.n}")
    l2 = [r["rel_l2"] for r in records if "rel_l2" in r]
    print(f"FNO relative L2 on the sweep: mean {np.mean(l2):.3e}, max {np.max(l2):.3e}")
    print(f"{'pc':<17}{'start':<11}{'mean its':>9}{'its saved':>10}{'total s':>9}{'saving':>8}{'guess s':>9}"
          f"{'guess res':>11}{'discarded':>10}")
    summary = {}
    for pc in args.pcs.split(","):
        cold = [r for r in records if r["pc"] == pc and r["mode"] == "cold"]
        its_c, t_c = np.mean([r["its"] for r in cold]), sum(r["total_s"] for r in cold)
        for mode in [m for m, _ in modes]:
            rs = [r for r in records if r["pc"] == pc and r["mode"] == mode]
            its, tot = np.mean([r["its"] for r in rs]), sum(r["total_s"] for r in rs)
            gs = sum(r["guess_s"] for r in rs)
            res = np.median([r["guess_residual"] for r in rs]) if mode != "cold" else float("nan")
            disc = sum(1 for r in rs if r.get("used") is False)
            print(f"{pc:<17}{mode:<11}{its:>9.1f}{(1 - its / its_c) * 100:>9.0f}%{tot:>9.3f}"
                  f"{(1 - tot / t_c) * 100:>7.0f}%{gs:>9.3f}{res:>11.2e}{disc:>10d}")
            summary[f"{pc}/{mode}"] = {"mean_its": its, "total_s": tot, "guess_s": gs, "median_guess_residual": res,
                                       "discarded": disc}
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "summary": summary, "records": records, "session_s": session_s,
                       "batched_ms_per_field": batched_ms, "single_ms_per_field": single_ms}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
