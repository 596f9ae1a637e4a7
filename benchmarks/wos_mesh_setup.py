"""Set-up time of a WoS mesh domain against the boundary mesh's size: gmsh surfaces of the unit sphere (3D) or
circle (2D) at several mesh sizes, each MeshDomain built once after a warm-up (numba compiles on the first build).

    python benchmarks/wos_mesh_setup.py --dim 3 --h 0.2,0.05,0.02,0.01
    python benchmarks/wos_mesh_setup.py --dim 3 --h 0.01 --grid-nodes 131072

Prints per mesh: primitives, set-up seconds, candidate-list entries (the tables the walk's exact queries read).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from accel.plugins.wos.mesh_domain import MeshDomain


def sphere_surface(dim: int, h: float):
    """Vertices and cells (segments in 2D, triangles in 3D) of gmsh's boundary mesh of the unit disk or ball."""
    import gmsh

    gmsh.initialize()
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        if dim == 3:
            gmsh.model.occ.addSphere(0, 0, 0, 1)
        else:
            gmsh.model.occ.addDisk(0, 0, 0, 1, 1)
        gmsh.model.occ.synchronize()
        gmsh.option.setNumber("Mesh.MeshSizeMax", h)
        gmsh.option.setNumber("Mesh.MeshSizeMin", h)
        gmsh.model.mesh.generate(dim - 1)
        tags, coords, _ = gmsh.model.mesh.getNodes()
        index = np.zeros(int(tags.max()) + 1, dtype=np.int64)
        index[tags.astype(np.int64)] = np.arange(len(tags))
        _, _, nodes = gmsh.model.mesh.getElements(dim - 1)
        cells = index[np.asarray(nodes[0], dtype=np.int64)].reshape(-1, dim)
        return coords.reshape(-1, 3)[:, :dim].copy(), cells
    finally:
        gmsh.finalize()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dim", type=int, choices=(2, 3), default=3)
    ap.add_argument("--h", default="0.2,0.05,0.02", help="comma-separated gmsh mesh sizes")
    ap.add_argument("--grid-nodes", type=int, default=None, help="MeshDomain's distance grid (default its own)")
    args = ap.parse_args()
    try:
        sizes = [float(v) for v in args.h.split(",")]
    except ValueError:
        ap.error(f"--h takes comma-separated numbers, got {args.h!r}")
    MeshDomain(*sphere_surface(args.dim, 0.5))  # warm-up: numba's compile is not set-up
    print(f"{'primitives':>10} {'set-up s':>9} {'list entries':>13}")
    for h in sizes:
        V, C = sphere_surface(args.dim, h)
        t = time.perf_counter()
        dom = MeshDomain(V, C, grid_nodes=args.grid_nodes)
        print(f"{len(C):>10} {time.perf_counter() - t:>9.2f} {dom._arrays['lists'].size:>13}", flush=True)


if __name__ == "__main__":
    main()
