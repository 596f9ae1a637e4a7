"""Walk-on-Spheres throughput: walk steps (distance queries) per second, all ranks together, against a naive
batched numpy walk measured in the same run.

Run (timed runs never overlap others):
    flock /tmp/accel-bench.lock mpirun -n 1 python benchmarks/wos_throughput.py
    flock /tmp/accel-bench.lock mpirun -n 2 python benchmarks/wos_throughput.py
    flock /tmp/accel-bench.lock python benchmarks/wos_throughput.py --threads 2   # numba parallel=True instead

steps/s = all steps / slowest rank's wall time. On a shared machine the wall-clock figure depends on what else
runs, so CPU time is reported too: "per core" = all steps / CPU seconds summed over ranks (the rate of one core
that is not time-shared). The naive reference (``naive_disk_walk``, 25 lines of batched numpy on the disk) runs on
every rank on its share of the walks, and its per-core rate is the denominator of the "x naive" column.
"""
from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import numpy as np
from mpi4py import MPI

from accel.cliargs import nonnegative_int, positive_float, positive_int
from accel.plugins.wos.domains import Ball, Box, StarShaped
from accel.plugins.wos.estimator import WalkOnSpheres, WoSSettings
from accel.plugins.wos.mesh_domain import MeshDomain, boundary_of_dolfinx_mesh


def _g(P):
    return np.exp(P[:, 0]) * np.cos(P[:, 1])


def naive_disk_walk(P, walks, eps, rng, dtype=np.float64):
    """The reference: every walk of every point in one batch, numpy per step, on the unit disk (u = g on the
    circle). Returns (mean per point, steps)."""
    X = np.repeat(np.asarray(P, dtype=dtype), walks, axis=0)
    live = np.arange(len(X))
    steps = 0
    while live.size:
        x = X[live]
        r = 1 - np.sqrt(x[:, 0] ** 2 + x[:, 1] ** 2)
        steps += live.size
        go = r >= eps
        live, x, r = live[go], x[go], r[go]
        th = rng.random(live.size, dtype=dtype) * dtype(2 * np.pi)
        x[:, 0] += r * np.cos(th)
        x[:, 1] += r * np.sin(th)
        X[live] = x
    B = X / np.linalg.norm(X, axis=1, keepdims=True)
    return _g(B.astype(np.float64)).reshape(len(P), walks).mean(axis=1), steps


def domains():
    t = np.linspace(0, 2 * np.pi, 1024, endpoint=False)
    seg = np.stack([np.arange(1024), (np.arange(1024) + 1) % 1024], 1)

    def dolfinx_cube():
        from dolfinx import mesh as dmesh

        return boundary_of_dolfinx_mesh(dmesh.create_unit_cube(MPI.COMM_SELF, 8, 8, 8))

    return {
        "disk": lambda: Ball((0, 0), 1),
        "square": lambda: Box((-1, -1), (1, 1)),
        "annulus (difference)": lambda: Ball((0, 0), 1) - Ball((0, 0), 0.2),
        "two disks (union)": lambda: Ball((-0.3, 0), 0.7) | Ball((0.3, 0), 0.7),
        "star c1=0.2 c2=0.1": lambda: StarShaped(0.2, 0.1),
        "ball 3D": lambda: Ball((0, 0, 0), 1),
        "polygon 1024 segments (mesh)": lambda: MeshDomain(np.stack([np.cos(t), np.sin(t)], 1), seg),
        "DOLFINx cube boundary 768 triangles (mesh)": dolfinx_cube,
    }


def _timed(comm, fn, repeats):
    """Best wall time over repeats (slowest rank), with that run's CPU seconds summed over ranks."""
    best = None
    for _ in range(repeats):
        comm.Barrier()
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        cpu = comm.allreduce(time.process_time() - c0)
        comm.Barrier()
        sec = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
        if best is None or sec < best[0]:
            best = (sec, cpu, out)
    return best


def _threads_runner(est, P, threads):
    """The same walks on one rank with numba parallel=True: prange over blocks (for the thread-vs-rank figure)."""
    import numba

    from accel.plugins.wos import kernel
    from accel.plugins.wos.program import compile_domain

    numba.set_num_threads(threads)
    s = est.settings
    prog = compile_domain(est.domain)
    Pc = np.ascontiguousarray(P.T)
    n_total = Pc.shape[1] * s.walks
    starts = np.arange(0, n_total, s.block_size)

    def run():
        return int(_blocks_parallel(Pc, s.walks, starts, n_total, s.block_size, np.uint64(s.seed), s.epsilon,
                                    s.max_steps, prog.ops, prog.fp, prog.ip, prog.depth, kernel.LANES))
    return run


def _make_parallel():
    from numba import njit, prange

    from accel.plugins.wos import kernel

    @njit(parallel=True, cache=True)
    def blocks(P, per_point, starts, n_total, block, seed, eps, max_steps, ops, fp, ip, depth, lanes):
        steps = np.zeros(starts.size, dtype=np.int64)
        for b in prange(starts.size):
            n = min(block, n_total - starts[b])
            _, _, _, _, st = kernel.walk_block(P, np.zeros(0, dtype=np.int64), per_point, starts[b], n, seed, eps,
                                               max_steps, ops, fp, ip, depth, 0, np.zeros(1), 0, 0, lanes)
            steps[b] = st
        return steps.sum()
    return blocks


_blocks_parallel = None


def main():
    global _blocks_parallel
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=positive_int, default=64)
    ap.add_argument("--walks", type=positive_int, default=20000, help="walks per point (every domain, meshes included)")
    ap.add_argument("--epsilon", type=positive_float, default=1e-3)
    ap.add_argument("--repeats", type=positive_int, default=3)
    ap.add_argument("--only", default="", help="comma list of domain name prefixes")
    ap.add_argument("--threads", type=nonnegative_int, default=0,
                    help="run on one rank with numba parallel=True threads")
    ap.add_argument("--naive-walks", type=positive_int, default=2000,
                    help="walks per point for the naive numpy reference")
    args = ap.parse_args()
    comm = MPI.COMM_WORLD
    only = [s for s in args.only.split(",") if s]
    if comm.rank == 0:
        print(f"# load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; ranks={comm.size}"
              f"{f', numba threads={args.threads}' if args.threads else ''}", flush=True)
    rows = []

    # the naive numpy reference: this rank's share of the points, float64 and float32 positions
    rng = np.random.default_rng(comm.rank)
    Pd = rng.uniform(-0.5, 0.5, (args.points // comm.size, 2))
    naive = {}
    for dt in (np.float64, np.float32):
        sec, cpu, (_, st) = _timed(comm, lambda: naive_disk_walk(Pd, args.naive_walks, args.epsilon, rng, dt),
                                   args.repeats)
        steps = comm.allreduce(st)
        naive[dt.__name__] = steps / cpu / 1e6
        rows.append({"domain": f"naive numpy disk ({dt.__name__})", "ranks": comm.size, "steps": steps,
                     "seconds": sec, "msteps_per_s": steps / sec / 1e6, "msteps_per_cpu_s": naive[dt.__name__]})
        if comm.rank == 0:
            print(f"{rows[-1]['domain']:<44} {steps:>11d} steps          {sec:7.3f} s {steps / sec / 1e6:8.2f} M "
                  f"steps/s  (per core {naive[dt.__name__]:6.2f})", flush=True)
    ref = max(naive.values())

    for name, make in domains().items():
        if only and not any(name.startswith(o) for o in only):
            continue
        dom = make()
        rng = np.random.default_rng(0)
        lo, hi = dom.bounds
        P = rng.uniform(lo, hi, (20 * args.points, dom.dim))
        P = P[dom.sdf(np.ascontiguousarray(P.T)) < -0.05][:args.points]
        walks = args.walks
        est = WalkOnSpheres(dom, _g, settings=WoSSettings(epsilon=args.epsilon, walks=walks, seed=1), comm=comm)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.solve(P[:4])  # warm-up (loads the compiled kernel)
            if args.threads:
                if _blocks_parallel is None:
                    _blocks_parallel = _make_parallel()
                run = _threads_runner(est, P, args.threads)
                run()
                sec, cpu, steps = _timed(comm, run, args.repeats)
            else:
                sec, cpu, res = _timed(comm, lambda: est.solve(P), args.repeats)
                steps = res.steps
        r = {"domain": name, "ranks": comm.size, "threads": args.threads or 1, "walks": walks * len(P),
             "steps": steps, "steps_per_walk": steps / (walks * len(P)), "seconds": sec,
             "msteps_per_s": steps / sec / 1e6, "cpu_seconds": cpu, "msteps_per_cpu_s": steps / cpu / 1e6,
             "x_naive_per_core": steps / cpu / 1e6 / ref}
        rows.append(r)
        if comm.rank == 0:
            print(f"{name:<44} {steps:>11d} steps {r['steps_per_walk']:5.1f}/walk {sec:7.3f} s "
                  f"{r['msteps_per_s']:8.2f} M steps/s  (per core {r['msteps_per_cpu_s']:6.2f}, "
                  f"{r['x_naive_per_core']:5.1f}x naive)", flush=True)
    if comm.rank == 0:
        print("JSON " + json.dumps(rows))


if __name__ == "__main__":
    main()
