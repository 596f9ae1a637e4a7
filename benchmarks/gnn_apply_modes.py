"""Cost of one application of M = G^T G on every level of a GAMG hierarchy, all in one process and one run:
through the Python PC (accel.NeuralPC, stored G^T or MatMultTranspose), through PCMAT with a multiplicative
MATCOMPOSITE [G, G^T] or with the explicit product G^T G (accel.plugins.gnn.native), against PCJACOBI (what GAMG's
Chebyshev smoother applies by default) and a MatMult with the level's operator. The classical FSAI factor on
tril(A) is used (the learned factor has the same pattern, so the same apply cost).

    flock /tmp/accel-bench.lock .venv/bin/python benchmarks/gnn_apply_modes.py \
        --matrix out/gnn-cases/plate_h0.005_c10000_s101
    flock /tmp/accel-bench.lock .venv/bin/python benchmarks/gnn_apply_modes.py --family plate --h 0.005
"""
from __future__ import annotations

import argparse
import time

MODES = ("python-explicit", "python-transpose", "pcmat-composite", "pcmat-product", "jacobi", "matmult")


def _python_pc(A, mode: str, prefix: str):
    from petsc4py import PETSc

    opts = PETSc.Options()
    for key, value in {"pc_type": "python", "pc_python_type": "accel.NeuralPC", "accel_plugin": "fsai",
                       "accel_gnn_apply": mode}.items():
        opts[prefix + key] = value
    pc = PETSc.PC().create(comm=A.getComm())
    pc.setOptionsPrefix(prefix)
    pc.setOperators(A)
    pc.setFromOptions()
    pc.setUp()
    return pc, []


def _mat_pc(A, apply: str):
    from petsc4py import PETSc

    from accel.plugins.gnn.native import build_component, factor_operator

    component = build_component("fsai", A)
    M = factor_operator(component.G, component.Gt, apply)
    pc = PETSc.PC().create(comm=A.getComm())
    pc.setType("mat")
    pc.setOperators(A, M)
    pc.setUp()
    return pc, [M, component]


def _jacobi(A):
    from petsc4py import PETSc

    pc = PETSc.PC().create(comm=A.getComm())
    pc.setType("jacobi")
    pc.setOperators(A)
    pc.setUp()
    return pc, []


def per_apply(A, mode: str, applies: int, tag: str) -> float:
    x, y = A.createVecs()
    x.setRandom()
    owned = []
    if mode == "matmult":
        apply = A.mult
    else:
        if mode.startswith("python"):
            pc, owned = _python_pc(A, mode.split("-")[1], f"applybench_{tag}_")
        elif mode.startswith("pcmat"):
            pc, owned = _mat_pc(A, mode.split("-")[1])
        else:
            pc, owned = _jacobi(A)
        owned.append(pc)
        apply = pc.apply
    apply(x, y)
    t0 = time.perf_counter()
    for _ in range(applies):
        apply(x, y)
    per = (time.perf_counter() - t0) / applies
    for obj in [x, y] + owned:
        obj.destroy()
    return per


def main(argv=None) -> int:
    from accel.cliargs import positive_float, positive_int

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", choices=("plate", "inclusion"), default="plate")
    p.add_argument("--h", type=positive_float, default=0.005)
    p.add_argument("--matrix", default=None, help="a PETSc binary matrix STEM.A.dat (e.g. from gnn_unstructured.py "
                   "--cache) instead of assembling --family/--h")
    p.add_argument("--work", type=positive_int, default=2_000_000,
                   help="applications per mode times rows, about (small levels get more applications)")
    args = p.parse_args(argv)
    from petsc4py import PETSc

    if args.matrix:
        viewer = PETSc.Viewer().createBinary(args.matrix + ".A.dat", "r")
        A = PETSc.Mat().load(viewer)
        viewer.destroy()
    else:
        from accel.plugins.gnn.problems import diffusion

        prob = diffusion(args.family, args.h, contrast=1e4, seed=101)
        A = prob.A
    ksp = PETSc.KSP().create()
    ksp.setOperators(A)
    ksp.setType("cg")
    ksp.getPC().setType("gamg")
    ksp.setUp()
    pc = ksp.getPC()
    print("| level | rows | nnz/row | " + " | ".join(f"{m} us" for m in MODES) + " | python-explicit / pcmat-composite "
          "| pcmat-composite / jacobi |")
    print("|---|---|---|" + "---|" * (len(MODES) + 2), flush=True)
    for level in range(pc.getMGLevels() - 1, 0, -1):
        A_level = pc.getMGSmoother(level).getOperators()[0]
        n = A_level.getSize()[0]
        info = A_level.getInfo()
        applies = max(20, args.work // n)
        times = {m: per_apply(A_level, m, applies, f"l{level}") for m in MODES}
        print(f"| {level} | {n} | {info['nz_used'] / n:.1f} | " + " | ".join(f"{times[m] * 1e6:.1f}" for m in MODES)
              + f" | {times['python-explicit'] / times['pcmat-composite']:.2f} | "
              f"{times['pcmat-composite'] / times['jacobi']:.2f} |", flush=True)
    ksp.destroy()
    A.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
