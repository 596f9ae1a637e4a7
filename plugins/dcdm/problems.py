"""The model problems the DCDM plugin ships networks for, assembled as scipy CSR matrices on structured grids.

Grids hold unknowns only (Dirichlet points eliminated), in natural order: x fastest, i.e. a C-ordered array of
shape (ny, nx) or (nz, ny, nx). Matrices are the unscaled finite-difference stencils (diagonal 2*dim in the
interior), which keeps entries O(1) at every resolution.

* ``poisson2d`` / ``poisson3d``: 5/7-point Laplacian, homogeneous Dirichlet on the whole boundary.
* ``obstacles2d`` / ``obstacles3d``: pressure Poisson of an incompressible flow in a box with solid obstacles:
  finite volumes, Neumann (no-flux) walls at the sides, bottom and around every solid cell, Dirichlet p=0 on the
  top face (the open outlet). Solid cells keep an identity row so the grid stays structured.
* ``random-obstacles2d`` / ``random-obstacles3d``: the same operator around a random set of disks/balls drawn from
  a seed (:func:`random_obstacles`); a family of these trains a model that generalises to unseen obstacle fields.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from accel.errors import GridError

PROBLEMS = ("poisson2d", "poisson3d", "obstacles2d", "obstacles3d", "random-obstacles2d", "random-obstacles3d")


@dataclass
class GridProblem:
    name: str
    shape: tuple[int, ...]        # C order, slowest axis first
    matrix: sp.csr_matrix
    solid: np.ndarray | None = None  # bool grid, True in solid cells (identity rows)

    @property
    def dim(self) -> int:
        return len(self.shape)


def _lap1d(n: int) -> sp.csr_matrix:
    return sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1], format="csr")


def poisson(shape: tuple[int, ...]) -> sp.csr_matrix:
    """Dirichlet Laplacian on a C-ordered grid (Kronecker sum of 1D stencils)."""
    mats = [_lap1d(n) for n in shape]
    eye = [sp.identity(n, format="csr") for n in shape]
    total = None
    for axis in range(len(shape)):
        factors = [mats[a] if a == axis else eye[a] for a in range(len(shape))]
        term = factors[0]
        for f in factors[1:]:
            term = sp.kron(term, f, format="csr")
        total = term if total is None else total + term
    return total.tocsr()


def obstacle_mask(shape: tuple[int, ...]) -> np.ndarray:
    """Solid cells: a fixed set of spheres/disks in unit-box coordinates, the same at every resolution."""
    return balls_mask(shape, [(0.3, 0.35, 0.5), (0.65, 0.6, 0.4), (0.4, 0.75, 0.6)], [0.12, 0.15, 0.09])


def balls_mask(shape: tuple[int, ...], centres, radii) -> np.ndarray:
    """Solid cells inside the disks/balls ``centres`` (x, y[, z] in the unit box) of ``radii``."""
    axes = [(np.arange(n) + 0.5) / n for n in shape]          # cell centres, axis 0 slowest
    solid = np.zeros(shape, bool)
    for c, rad in zip(centres, radii):
        # a separable sum of squares: no full-size coordinate grids per ball
        d2 = sum(((axes[a] - c[len(shape) - 1 - a]) ** 2).reshape([-1 if b == a else 1 for b in range(len(shape))])
                 for a in range(len(shape)))
        solid |= d2 < rad**2
    return solid


def random_obstacles(dim: int, seed: int, count: tuple[int, int] = (2, 6), radius: tuple[float, float] = (0.05, 0.16)
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(centres, radii) of a random obstacle field: ``count`` disks/balls kept off the walls, from ``seed``."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(count[0], count[1] + 1))
    radii = rng.uniform(*radius, k)
    centres = rng.uniform(0.15, 0.85, (k, dim))
    return centres, radii


def random_obstacle_mask(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return balls_mask(shape, *random_obstacles(len(shape), seed))


def moving_obstacle_mask(shape: tuple[int, ...], seed: int, step: int, period: int = 50,
                         amplitude: float = 0.1) -> np.ndarray:
    """Frame ``step`` of a random obstacle field (from ``seed``) whose obstacles each circle their start position
    once every ``period`` frames; fluid pockets the obstacles close off are filled (see :func:`seal_pockets`)."""
    centres, radii = random_obstacles(len(shape), seed)
    rng = np.random.default_rng(seed + 7919)
    phase = rng.uniform(0, 2 * np.pi, len(radii))
    angle = 2 * np.pi * step / period + phase
    offset = np.zeros_like(centres)
    offset[:, 0], offset[:, 1] = amplitude * np.cos(angle), amplitude * np.sin(angle)
    return seal_pockets(balls_mask(shape, np.clip(centres + offset, 0.12, 0.88), radii))


def seal_pockets(solid: np.ndarray) -> np.ndarray:
    """``solid`` plus every fluid region that does not reach the open top layer (axis 0's last): such a region has
    Neumann walls only, a singular block; obstacles that touch make them, and they hold no flow."""
    from scipy import ndimage

    labels, _ = ndimage.label(~solid)
    open_labels = np.unique(labels[-1][labels[-1] > 0])
    return solid | ~np.isin(labels, open_labels)


def pressure_poisson(shape: tuple[int, ...], solid: np.ndarray, full_pattern: bool = False) -> sp.csr_matrix:
    """Finite-volume pressure Poisson on cells; axis 0 is vertical, its last layer borders the open top (p=0).

    ``full_pattern`` keeps every face of the grid in the sparsity pattern (explicit zeros across walls): operators of
    different obstacle fields then share one pattern, so a solver can update values in place as obstacles move."""
    n = int(np.prod(shape))
    idx = np.arange(n).reshape(shape)
    fluid = ~solid
    rows, cols, vals = [], [], []
    diag = np.zeros(shape)
    for axis in range(len(shape)):
        lo = [slice(None)] * len(shape)
        hi = [slice(None)] * len(shape)
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        lo, hi = tuple(lo), tuple(hi)
        face = fluid[lo] & fluid[hi]                      # faces between two fluid cells couple them
        keep = np.ones_like(face) if full_pattern else face
        a, b = idx[lo][keep], idx[hi][keep]
        coupling = -face[keep].astype(float)
        rows += [a, b]
        cols += [b, a]
        vals += [coupling, coupling]
        np.add.at(diag, lo, face)
        np.add.at(diag, hi, face)
    top = [slice(None)] * len(shape)
    top[0] = -1
    diag[tuple(top)] += 2.0 * fluid[tuple(top)]           # Dirichlet p=0 half a cell above the top layer
    diag[solid] = 1.0
    isolated = fluid & (diag == 0)
    if isolated.any():
        raise GridError(f"{int(isolated.sum())} fluid cells are enclosed by solid cells; the system is singular")
    rows.append(idx.ravel())
    cols.append(idx.ravel())
    vals.append(diag.ravel())
    A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    return A


def build(name: str, shape: tuple[int, ...], seed: int = 0) -> GridProblem:
    """Assemble a named problem on a grid of ``shape`` (unknowns only, C order); ``seed`` draws the obstacles of the
    ``random-`` problems."""
    shape = tuple(int(s) for s in shape)
    if name not in PROBLEMS:
        raise GridError(f"unknown problem {name!r}; valid: {', '.join(PROBLEMS)}")
    dim = 3 if name.endswith("3d") else 2
    if len(shape) != dim:
        raise GridError(f"problem {name} is {dim}D but the grid {shape} has {len(shape)} axes")
    if name.startswith("poisson"):
        return GridProblem(name, shape, poisson(shape))
    solid = random_obstacle_mask(shape, seed) if name.startswith("random-") else obstacle_mask(shape)
    return GridProblem(name, shape, pressure_poisson(shape, solid), solid)


def family(name: str, shape: tuple[int, ...], members: int, seed: int = 0) -> list[GridProblem]:
    """``members`` problems of one kind: random obstacle fields from seeds ``seed``, ``seed + 1``, ... (fields that
    would enclose fluid are skipped), or the one fixed problem for the other kinds."""
    if not name.startswith("random-"):
        return [build(name, shape)]
    out, s = [], seed
    while len(out) < members:
        try:
            out.append(build(name, shape, s))
        except GridError:  # an enclosed fluid pocket: singular, not a member of the family
            pass
        s += 1
    return out


def to_petsc(A: sp.csr_matrix, comm=None):
    """A distributed PETSc AIJ matrix with the rows of ``A`` split in contiguous blocks over ``comm``."""
    from petsc4py import PETSc

    comm = comm or PETSc.COMM_WORLD
    n = A.shape[0]
    M = PETSc.Mat().create(comm=comm)
    M.setSizes(((PETSc.DECIDE, n), (PETSc.DECIDE, n)))
    M.setType(PETSc.Mat.Type.AIJ)
    M.setUp()
    r0, r1 = M.getOwnershipRange()
    local = A[r0:r1].tocsr()
    local.sort_indices()
    M.setPreallocationCSR((local.indptr.astype(PETSc.IntType), local.indices.astype(PETSc.IntType), local.data))
    M.assemble()
    return M
