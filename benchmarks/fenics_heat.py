"""Benchmark: the heat-equation example (examples/fenics/heat_equation.py) with the neural preconditioner against
the same script with CG+ICC, CG+GAMG, CG+BoomerAMG, and an ablation (FCG(2) with symmetric SOR, the classical part
of the neural cycle without the network). ``accel-sor`` is the neural PC with one symmetric SOR sweep on each side of
the network (-accel_smoother sor) instead of two Jacobi sweeps. All solvers run in one process, one after the other, with rtol on the
unpreconditioned residual.

    python benchmarks/fenics_heat.py --n 32 --steps 20
    mpirun -n 2 python benchmarks/fenics_heat.py --n 32 --steps 20

Prints a markdown table: total time, first step (set-up included), mean time per later step (assembly + solve),
mean solve time per later step, iterations per step.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

from mpi4py import MPI

ROOT = Path(__file__).resolve().parents[1]


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / "fenics" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ABLATION = {"fcg-ssor": {"ksp_type": "fcg", "ksp_fcg_mmax": 2, "ksp_fcg_truncation_type": "standard",
                         "pc_type": "sor", "pc_sor_symmetric": None}}


def summarise(r):
    t, s, its = r["times"], r["solve_times"], r["iterations"]
    later = max(1, len(t) - 1)
    return {"solver": r["solver"], "dofs": r["dofs"], "steps": len(t), "total_s": sum(t), "first_step_s": t[0],
            "later_step_s": sum(t[1:]) / later, "later_solve_s": sum(s[1:]) / later,
            "its_first": its[0], "its_later_mean": sum(its[1:]) / later, "its_max": max(its), "norm": r["norm"]}


def table(rows, ref="icc"):
    base = {r["solver"]: r for r in rows}
    out = ["| solver | total s | first step s | later step s | later solve s | solve vs ICC | its first / later mean / max |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = r["later_solve_s"] / base[ref]["later_solve_s"] if ref in base else float("nan")
        out.append(f"| {r['solver']} | {r['total_s']:.3f} | {r['first_step_s']:.3f} | {r['later_step_s']:.4f} | "
                   f"{r['later_solve_s']:.4f} | {ratio:.2f} | {r['its_first']} / {r['its_later_mean']:.1f} / {r['its_max']} |")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--dt", type=float, default=0.02)
    parser.add_argument("--rtol", type=float, default=1e-8)
    parser.add_argument("--cell", default="tetrahedron")
    parser.add_argument("--solvers", default="accel,accel-sor,icc,gamg,hypre,fcg-ssor")
    parser.add_argument("--model", default=None)
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the solvers this many times, interleaved, and keep each one's fastest run "
                             "(a shared machine's load changes from run to run)")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: the PC's)")
    parser.add_argument("--pc", default="", help="more accelerate() options, e.g. cycle_pre=1,cycle_post=1")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args()
    ex = load_example("heat_equation")
    ex.CLASSICAL.update(ABLATION)
    best = {}
    for _ in range(args.repeat):
        for solver in args.solvers.split(","):
            kw = {}
            if solver.startswith("accel"):
                kw = {k: (float(v) if "." in v else int(v)) if v.replace(".", "").isdigit() else v
                      for k, v in (item.split("=") for item in args.pc.split(",") if item)}
                if solver == "accel-sor":
                    kw.update(smoother="sor", cycle_pre=1, cycle_post=1)
                if args.threads:
                    kw["threads"] = args.threads
            r = ex.run(args.n, args.steps, args.dt, "accel" if solver.startswith("accel") else solver, args.rtol,
                       args.cell, args.model, **kw)
            r["solver"] = solver
            row = summarise(r)
            if r.get("pc_stats"):
                row["pc_ms_per_apply"] = {k: round(1e3 * v / max(1, r["pc_stats"]["applies"]), 3)
                                          for k, v in r["pc_stats"].items() if isinstance(v, float)}
            if MPI.COMM_WORLD.rank == 0:
                print(json.dumps(row), flush=True)
            if solver not in best or row["total_s"] < best[solver]["total_s"]:
                best[solver] = row
    rows = list(best.values())
    if MPI.COMM_WORLD.rank == 0:
        print(f"\nfastest of {args.repeat} run(s) per solver. heat equation, unit cube, {args.cell}, "
              f"{rows[0]['dofs']} dofs, {args.steps} steps, dt {args.dt}, "
              f"rtol {args.rtol}, {MPI.COMM_WORLD.size} rank(s)\n")
        print(table(rows))
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
