"""The gnn set-up per component, before and after computing FSAI's edge feature only on the rows the network reads
(``padded_graph(..., near=, hops=)``): both variants in one process on one matrix, one after the other.

    .venv/bin/python benchmarks/gnn_unstructured.py --family inclusion --h 0.013 --contrast 1e4 \
        --cache out/gnn-cases --assemble-only
    flock /tmp/accel-bench.lock .venv/bin/python benchmarks/gnn_setup_cuts.py out/gnn-cases/inclusion_h0.013_c10000_s101

"before" replaces the graph builder by one that ignores ``near`` (FSAI on every row of each chunk, rings included).
Prints one markdown row per component and variant, with the process's peak memory so far.
"""
from __future__ import annotations

import argparse
import resource
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("matrix", help="STEM of STEM.A.dat, a PETSc binary matrix (gnn_unstructured.py --cache)")
    args = p.parse_args(argv)
    from petsc4py import PETSc

    from accel.components import PreconditionerConfig
    from accel.plugins.gnn import preconditioner

    built = preconditioner.padded_graph

    def everywhere(block, diag=None, pattern="a", near=None, hops=0):
        return built(block, diag, pattern)

    viewer = PETSc.Viewer().createBinary(args.matrix + ".A.dat", "r")
    A = PETSc.Mat().load(viewer)
    viewer.destroy()
    # numba loads its compiled kernels and ONNX Runtime its sessions on first use: paid here, on a small matrix
    small = PETSc.Mat().createAIJ(size=(400, 400), nnz=5)
    for i in range(400):
        small.setValue(i, i, 4.0)
        for j in (i - 1, i + 1, i - 20, i + 20):
            if 0 <= j < 400:
                small.setValue(i, j, -1.0)
    small.assemble()
    gnn, fsai = preconditioner.GNNPreconditioner, preconditioner.FSAIPreconditioner
    for cls, extra in ((gnn, {}), (gnn, {"gnn_pattern": "a2"}), (fsai, {"gnn_pattern": "a2"})):
        component = cls(PreconditionerConfig(extra=extra))
        component.initialize(small)
        component.destroy()
    small.destroy()
    print("| unknowns | component | variant | set-up s | breakdown s | peak memory GB |")
    print("|---|---|---|---|---|---|")
    try:
        for name, extra in (("gnn", {}), ("fsai2", {"gnn_pattern": "a2"}), ("gnn2", {"gnn_pattern": "a2"})):
            for variant in ("before", "after"):
                preconditioner.padded_graph = everywhere if variant == "before" else built
                cls = preconditioner.FSAIPreconditioner if name == "fsai2" else preconditioner.GNNPreconditioner
                component = cls(PreconditionerConfig(extra=extra))
                t0 = time.perf_counter()
                component.initialize(A)
                seconds = time.perf_counter() - t0
                parts = ", ".join(f"{k} {v:.2f}" for k, v in component.breakdown.items())
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
                print(f"| {A.getSize()[0]} | {name} | {variant} | {seconds:.2f} | {parts} | {peak:.1f} |", flush=True)
                component.destroy()
    finally:
        preconditioner.padded_graph = built
        A.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
