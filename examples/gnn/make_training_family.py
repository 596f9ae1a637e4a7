"""Write the gnn training family as PETSc binary matrices (what -ksp_view_mat binary:FILE writes).

P1 variable-coefficient diffusion on unstructured gmsh meshes: a 2D plate with three holes and a 3D box minus a
ball, coefficient contrast 10 and 1e4, random hole/ball placement and coefficient field per seed. Then:

    accel train gnn --matrices 'DIR/A_*.dat' --out model.onnx

Usage: python examples/gnn/make_training_family.py --out DIR [--seeds 6] [--h2d 0.03] [--h3d 0.08] [--force]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from accel.cliargs import positive_float, positive_int


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder to write A_*.dat into (refused if it exists)")
    parser.add_argument("--seeds", type=positive_int, default=6, help="meshes and coefficient fields per family")
    parser.add_argument("--h2d", type=positive_float, default=0.03, help="mesh size of the 2D plate")
    parser.add_argument("--h3d", type=positive_float, default=0.08, help="mesh size of the 3D box minus a ball")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    args = parser.parse_args(argv)
    from petsc4py import PETSc

    from accel.files import atomic_output
    from accel.plugins.gnn.problems import diffusion

    out = Path(args.out)
    if out.exists() and not args.force:
        parser.error(f"{out} exists; pass --force to replace it or choose another --out")
    with atomic_output(out, force=args.force, folder=True) as tmp:
        for seed in range(args.seeds):
            for family, h in (("plate", args.h2d), ("inclusion", args.h3d)):
                for contrast in (10.0, 1e4):
                    p = diffusion(family, h, contrast=contrast, seed=seed)
                    viewer = PETSc.Viewer().createBinary(str(tmp / f"A_{family}_c{contrast:g}_s{seed}.dat"), "w")
                    p.A.view(viewer)
                    viewer.destroy()
                    print(f"{p.name}: {p.A.getSize()[0]} unknowns", flush=True)
                    p.destroy()
        for extra in tmp.glob("*.info"):  # PETSc's option sidecar files are not needed
            extra.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
