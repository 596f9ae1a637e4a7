"""Set-up cost of the neural PC when only the operator's values change (a time step, a Newton step).

    flock /tmp/accel-bench.lock .venv/bin/python benchmarks/pc_setup_reuse.py --size 128 --repeats 3

One KSP on the 3D Poisson matrix (shipped 3D model, levels down to its training grid). Timed, in one run:
``first``: the first set-up (component, ONNX session, levels, transfer); ``update``: the set-up after new values
were written into the same matrix (the PC's update path); ``rebuild``: the set-up after ``PC.reset`` (every level,
interpolation and transfer built again, the ONNX session kept: what a second set-up cost before the update path).
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import petsc4py

petsc4py.init()
from petsc4py import PETSc  # noqa: E402

from accel.plugins.dcdm import problems  # noqa: E402

OPTIONS = {"ksp_type": "fcg", "ksp_fcg_mmax": 2, "ksp_fcg_truncation_type": "standard",
           "ksp_norm_type": "unpreconditioned", "pc_type": "python", "pc_python_type": "accel.NeuralPC"}


def timed_setup(pc) -> float:
    t = time.perf_counter()
    pc.setUp()
    return time.perf_counter() - t


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=128, help="grid points per axis (default 128)")
    parser.add_argument("--repeats", type=int, default=3, help="update/rebuild pairs timed (default 3)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.size < 8 or args.repeats < 1:
        parser.error("--size must be at least 8 and --repeats at least 1")
    n = args.size
    A = problems.to_petsc(problems.build("poisson3d", (n, n, n)).matrix)
    opts = PETSc.Options()
    prefix = "reuse_"
    for k, v in {**OPTIONS, "accel_grid": f"{n},{n},{n}"}.items():
        opts[prefix + k] = v
    ksp = PETSc.KSP().create()
    try:
        ksp.setOptionsPrefix(prefix)
        ksp.setOperators(A)
        ksp.setFromOptions()
        pc = ksp.getPC()
        first = timed_setup(pc)
        ctx = pc.getPythonContext()
        updates, rebuilds = [], []
        for _ in range(args.repeats):
            A.scale(1.5)  # new values, same matrix and pattern
            updates.append(timed_setup(pc))
            pc.reset()  # frees the operators too
            pc.setOperators(A, A)
            rebuilds.append(timed_setup(pc))
        result = {"size": n, "levels": ctx.levels, "first_s": first, "update_s": min(updates),
                  "rebuild_s": min(rebuilds), "setups": ctx.setups, "machine": platform.platform()}
    finally:
        ksp.destroy()
        A.destroy()
        for k in list(opts.getAll()):
            if k.startswith(prefix):
                opts.delValue(k)
    PETSc.Sys.Print(f"{n}^3, {result['levels']} level(s): first set-up {first:.3f} s, update (new values) "
                    f"{result['update_s']:.3f} s, rebuild after reset {result['rebuild_s']:.3f} s "
                    f"(best of {args.repeats}); set-ups {result['setups']}")
    if args.json:
        with open(args.json + ".tmp", "w") as f:
            json.dump(result, f, indent=1)
        import os

        os.replace(args.json + ".tmp", args.json)


if __name__ == "__main__":
    main()
