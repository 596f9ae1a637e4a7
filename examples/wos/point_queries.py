"""Walk-on-Spheres point queries: analytic domains, set operations, a DOLFINx mesh boundary, and MPI.

    python examples/wos/point_queries.py
    mpirun -n 2 python examples/wos/point_queries.py      # same numbers: walks split over ranks, same seed
"""
import numpy as np
from mpi4py import MPI

from accel.plugins.wos.domains import Ball, Box
from accel.plugins.wos.estimator import WalkOnSpheres, WoSSettings
from accel.plugins.wos.mesh_domain import boundary_of_dolfinx_mesh
from accel.registry import get_registry


def u_exact(P):  # harmonic: Laplace(u) = 0, so u is its own boundary data
    return np.exp(P[:, 0]) * np.cos(P[:, 1])


comm = MPI.COMM_WORLD
say = print if comm.rank == 0 else (lambda *a, **k: None)
X = np.array([[0.5, 0.5], [0.3, 0.7]])

# 1. a square with a round hole and a disk glued on (difference and union of signed distance functions)
domain = (Box((0, 0), (1, 1)) - Ball((0.5, 0.5), 0.1)) | Ball((1.0, 0.5), 0.3)
X1 = np.array([[0.3, 0.3], [1.1, 0.5]])
res = WalkOnSpheres(domain, u_exact, settings=WoSSettings(walks=20000, seed=1), comm=comm).solve(X1)
say("CSG domain:   ", res.value, "+-", res.stderr, "exact", u_exact(X1))

# 2. the boundary of a DOLFINx mesh (closest points from the compiled candidate-list kernel)
from dolfinx import mesh as dmesh  # noqa: E402

square = boundary_of_dolfinx_mesh(dmesh.create_unit_square(MPI.COMM_SELF, 16, 16))
res = WalkOnSpheres(square, u_exact, settings=WoSSettings(walks=20000, seed=1), comm=comm).solve(X)
say("mesh boundary:", res.value, "+-", res.stderr, "exact", u_exact(X))

# 3. through the registry, as other plugins request it: a Poisson problem with a known solution
sup = get_registry().create("supervisor", "wos", problem="disk-poisson", walks=20000, comm=comm)
say("disk Poisson: ", sup.estimate(X * 0.5), "exact", (1 - np.sum((X * 0.5) ** 2, 1)) / 4)
