"""Error versus time for point queries: Walk-on-Spheres against DOLFINx finite elements on the same problem.

Problem: the default star-shaped Poisson instance (Gaussian sources, Fourier boundary data; ``accel wos --problem
star-poisson``). Truth: a fine P2 solve. Both methods answer u at the same query points; time per answer includes
everything after start-up (mesh, assembly, solve and evaluation for FE, after a warm-up that compiles the forms;
the walks for WoS). Run: python benchmarks/wos_error_vs_time.py  (or under mpirun -n 2 for split walks).
"""
from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
from mpi4py import MPI

from accel.plugins.wos.estimator import WalkOnSpheres, WoSSettings
from accel.plugins.wos.fem_reference import solve_poisson
from accel.plugins.wos.problems import StarPoisson


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=8)
    ap.add_argument("--epsilon", type=float, default=1e-4)
    ap.add_argument("--truth", default="128,512", help="n_r,n_t of the P2 truth mesh")
    args = ap.parse_args()
    comm = MPI.COMM_WORLD
    inst = StarPoisson.default()
    X = inst.interior_points(args.points, np.random.default_rng(5), margin=0.05)
    nr, nt = map(int, args.truth.split(","))
    rows = []
    truth = None
    if comm.rank == 0:
        t0 = time.perf_counter()
        truth = solve_poisson(inst.R, inst.source, inst.boundary, nr, nt, degree=2)(X)
        print(f"# truth: P2 on {nr}x{nt} polar mesh, {time.perf_counter() - t0:.1f} s", flush=True)
        for deg in (1, 2):
            solve_poisson(inst.R, inst.source, inst.boundary, 4, 16, degree=deg)  # warm-up: form compilation
            for n_r in (4, 8, 16, 32, 64):
                t0 = time.perf_counter()
                u = solve_poisson(inst.R, inst.source, inst.boundary, n_r, 4 * n_r, degree=deg)(X)
                sec = time.perf_counter() - t0
                rows.append({"method": f"FE P{deg} {n_r}x{4 * n_r}", "seconds": sec,
                             "max_error": float(np.max(np.abs(u - truth)))})
                print(f"{rows[-1]['method']:<24} {sec:8.3f} s  max error {rows[-1]['max_error']:.2e}", flush=True)
    truth = comm.bcast(truth)
    prob = inst.problem()
    for walks in (100, 1000, 10_000, 100_000):
        est = WalkOnSpheres(prob.domain, prob.boundary, prob.source,
                            WoSSettings(epsilon=args.epsilon, walks=walks, seed=3, max_steps=10_000), comm=comm)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.solve(X[:1], walks=10)
            comm.Barrier()
            t0 = time.perf_counter()
            res = est.solve(X)
            comm.Barrier()
            sec = time.perf_counter() - t0
        err = np.abs(res.value - truth)
        rows.append({"method": f"WoS {walks} walks ({comm.size} rank{'s' if comm.size > 1 else ''})",
                     "seconds": sec, "max_error": float(err.max()), "max_stderr": float(res.stderr.max()),
                     "overruns": res.total_overruns})
        if comm.rank == 0:
            print(f"{rows[-1]['method']:<24} {sec:8.3f} s  max error {err.max():.2e} (max 1-sigma "
                  f"{res.stderr.max():.1e}, overruns {res.total_overruns})", flush=True)
    if comm.rank == 0:
        print("JSON " + json.dumps(rows))


if __name__ == "__main__":
    main()
