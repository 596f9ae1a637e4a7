"""Walk-on-Spheres throughput: walk steps (distance queries) per second, all ranks together.

Run: mpirun -n 1 python benchmarks/wos_throughput.py   and   mpirun -n 2 python benchmarks/wos_throughput.py
(the 2-rank run splits the same walks over two processes; steps/s = all steps / slowest rank's wall time).

On a shared machine the wall-clock figure depends on what else runs, so the CPU time of every rank is reported
too: "per core" = all steps / CPU seconds summed over ranks (the rate of one core that is not time-shared), and
the load average at the start is printed.
"""
from __future__ import annotations

import os

import argparse
import json
import time
import warnings

import numpy as np
from mpi4py import MPI

from accel.plugins.wos.domains import Ball, Box, StarShaped
from accel.plugins.wos.estimator import WalkOnSpheres, WoSSettings
from accel.plugins.wos.mesh_domain import MeshDomain, boundary_of_dolfinx_mesh


def _g(P):
    return np.exp(P[:, 0]) * np.cos(P[:, 1])


def domains():
    t = np.linspace(0, 2 * np.pi, 1024, endpoint=False)
    seg = np.stack([np.arange(1024), (np.arange(1024) + 1) % 1024], 1)

    def dolfinx_cube():
        from dolfinx import mesh as dmesh

        return boundary_of_dolfinx_mesh(dmesh.create_unit_cube(MPI.COMM_SELF, 8, 8, 8))

    return {
        "disk": (lambda: Ball((0, 0), 1), 1.0),
        "square": (lambda: Box((-1, -1), (1, 1)), 1.0),
        "annulus (difference)": (lambda: Ball((0, 0), 1) - Ball((0, 0), 0.2), 1.0),
        "two disks (union)": (lambda: Ball((-0.3, 0), 0.7) | Ball((0.3, 0), 0.7), 1.0),
        "star c1=0.2 c2=0.1": (lambda: StarShaped(0.2, 0.1), 1.0),
        "polygon 1024 segments (fcpw)": (lambda: MeshDomain(np.stack([np.cos(t), np.sin(t)], 1), seg), 0.1),
        "ball 3D": (lambda: Ball((0, 0, 0), 1), 1.0),
        "DOLFINx cube boundary 768 triangles (fcpw)": (dolfinx_cube, 0.1),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=64)
    ap.add_argument("--walks", type=int, default=20000, help="walks per point (scaled down for fcpw domains)")
    ap.add_argument("--epsilon", type=float, default=1e-3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default="", help="comma list of domain name prefixes")
    ap.add_argument("--dtypes", default="float32,float64")
    args = ap.parse_args()
    comm = MPI.COMM_WORLD
    only = [s for s in args.only.split(",") if s]
    if comm.rank == 0:
        print(f"# load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    rows = []
    for name, (make, frac) in domains().items():
        if only and not any(name.startswith(o) for o in only):
            continue
        dom = make()
        rng = np.random.default_rng(0)
        lo, hi = dom.bounds
        P = rng.uniform(lo, hi, (20 * args.points, dom.dim))
        P = P[dom.sdf(np.ascontiguousarray(P.T)) < -0.05][:args.points]
        walks = max(1, int(args.walks * frac))
        for dt in args.dtypes.split(","):
            est = WalkOnSpheres(dom, _g, settings=WoSSettings(epsilon=args.epsilon, walks=walks, dtype=dt, seed=1),
                                comm=comm)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.solve(P[:4])  # warm-up
                best = cpu_best = None
                for _ in range(args.repeats):
                    comm.Barrier()
                    t0, c0 = time.perf_counter(), time.process_time()
                    res = est.solve(P)
                    cpu = comm.allreduce(time.process_time() - c0)
                    comm.Barrier()
                    sec = time.perf_counter() - t0
                    best = sec if best is None else min(best, sec)
                    cpu_best = cpu if cpu_best is None else min(cpu_best, cpu)
            rows.append({"domain": name, "dtype": dt, "ranks": comm.size, "walks": walks * len(P), "steps": res.steps,
                         "steps_per_walk": res.steps / (walks * len(P)), "seconds": best,
                         "msteps_per_s": res.steps / best / 1e6, "cpu_seconds": cpu_best,
                         "msteps_per_cpu_s": res.steps / cpu_best / 1e6})
            if comm.rank == 0:
                r = rows[-1]
                print(f"{name:<44} {dt:<8} ranks={comm.size} {r['steps']:>10d} steps {r['steps_per_walk']:6.1f}/walk "
                      f"{best:7.3f} s  {r['msteps_per_s']:7.2f} M steps/s  (per core {r['msteps_per_cpu_s']:6.2f})",
                      flush=True)
    if comm.rank == 0:
        print("JSON " + json.dumps(rows))


if __name__ == "__main__":
    main()
