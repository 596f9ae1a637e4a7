"""The neural PC as a PETSc user meets it: the plain C program examples/c/laplace3d (7-point Laplacian on a DMDA,
rtol 1e-8, unpreconditioned norm) at several grid sizes and rank counts, against ICC and PETSc's geometric
multigrid on the DMDA (Galerkin coarse operators, SOR or Chebyshev/Jacobi smoothers; only where the DMDA can
coarsen: 2^k + 1 points per axis, levels chosen from the grid).

    make -C examples/c laplace3d
    .venv/bin/python benchmarks/dcdm_c_driver.py --sizes 65,128,129 --ranks 1,2 --json out/c_driver.json

Times are the program's own KSPSetUp and KSPSolve wall clock (rank 0), Python start-up excluded; every run is a
separate process, solvers of one size and rank count run one after the other.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "integrations" / "petsc"))  # hierarchy.py alone: no accel import needed here
from hierarchy import dmda_mg_levels  # noqa: E402

UNPREC = ["-ksp_norm_type", "unpreconditioned"]
NEURAL = ["-python", "-ksp_type", "fcg", "-ksp_fcg_mmax", "2", "-ksp_fcg_truncation_type", "standard", *UNPREC,
          "-pc_type", "python", "-pc_python_type", "accel.NeuralPC"]
SOLVERS = {
    "cg+icc": ["-ksp_type", "cg", *UNPREC, "-pc_type", "icc"],
    "cg+mg-sor": ["-ksp_type", "cg", *UNPREC, "-pc_type", "mg", "-pc_mg_galerkin", "both",
                  "-mg_levels_ksp_type", "richardson", "-mg_levels_pc_type", "sor"],
    "cg+mg-cheby": ["-ksp_type", "cg", *UNPREC, "-pc_type", "mg", "-pc_mg_galerkin", "both",
                    "-mg_levels_ksp_type", "chebyshev", "-mg_levels_pc_type", "jacobi"],
    "fcg2+neural": NEURAL,
    "fcg2+neural-sor": [*NEURAL, "-accel_smoother", "sor", "-accel_cycle_pre", "1", "-accel_cycle_post", "1"],
    "fcg2+neural-k": [*NEURAL, "-accel_smoother", "sor", "-accel_cycle_pre", "0", "-accel_cycle_post", "1",
                      "-accel_cycle_type", "k"],
}


def run(driver, ranks, size, solver, threads, timeout):
    args = ["mpirun", "-n", str(ranks), driver, "-n", str(size), *SOLVERS[solver]]
    if solver.startswith("cg+mg"):
        levels = dmda_mg_levels((size,) * 3)
        if levels < 3:
            return None  # the DMDA cannot coarsen this grid: PCMG on it is no option for the user
        args += ["-pc_mg_levels", str(levels)]
    if "neural" in solver:
        args += ["-accel_threads", str(threads)]
    if solver == "cg+icc" and ranks > 1:
        args += ["-pc_type", "bjacobi", "-sub_pc_type", "icc"]  # ICC is sequential: one block per rank
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1",
               PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    out = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    m = re.search(r"iterations (\d+) true_relative_residual (\S+) reason (-?\d+) setup_s (\S+) solve_s (\S+)",
                  out.stdout)
    if not m:
        return {"error": (out.stdout + out.stderr)[-500:]}
    its, res, reason, setup, solve = m.groups()
    return {"iterations": int(its), "residual": float(res), "converged": int(reason) > 0, "setup_s": float(setup),
            "solve_s": float(solve), "total_s": float(setup) + float(solve)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="64,65,128,129")
    ap.add_argument("--ranks", default="1,2")
    ap.add_argument("--solvers", default=",".join(SOLVERS))
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads on rank 0")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    driver = ROOT / "examples" / "c" / "laplace3d"
    if not driver.is_file() or shutil.which("mpirun") is None:
        sys.exit("build the driver first: make -C examples/c laplace3d (needs petsc-dev and mpirun)")
    rows = []
    started, load = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()
    print(f"{'ranks':>5} {'grid':>6} {'solver':<17}{'its':>5}{'setup s':>9}{'solve s':>9}{'total s':>9}{'true res':>10}")
    for ranks in [int(r) for r in args.ranks.split(",")]:
        for size in [int(s) for s in args.sizes.split(",")]:
            for solver in args.solvers.split(","):
                r = run(str(driver), ranks, size, solver, args.threads, args.timeout)
                if r is None:
                    print(f"{ranks:>5} {size:>5}^3 {solver:<17} n/a (the DMDA cannot coarsen {size} points)")
                    continue
                r.update(ranks=ranks, grid=size, solver=solver)
                rows.append(r)
                if "error" in r:
                    print(f"{ranks:>5} {size:>5}^3 {solver:<17} FAILED: {r['error'][-200:]}")
                    continue
                print(f"{ranks:>5} {size:>5}^3 {solver:<17}{r['iterations']:>5}{r['setup_s']:>9.3f}{r['solve_s']:>9.3f}"
                      f"{r['total_s']:>9.3f}{r['residual']:>10.1e}{'' if r['converged'] else '  NOT CONVERGED'}",
                      flush=True)
    print(f"started {started}, load average at start {load[0]:.2f}, at end {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"started": started, "load_start": load, "load_end": os.getloadavg(),
                                               "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
