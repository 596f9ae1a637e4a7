"""DOF-to-grid transfer for scalar P1/Q1 spaces on DOLFINx box meshes.

On a box mesh (triangles, quadrilaterals, tetrahedra, hexahedra; any box and aspect) the degrees of freedom of a
degree-1 Lagrange space sit exactly on a tensor lattice. The network works on the lattice's interior points (the
Dirichlet-eliminated grid it was trained on), so:

* ``to_grid`` gathers the interior values to rank 0 with one PETSc scatter built at set-up (never per apply);
* ``from_grid`` scatters the network's answer back and gives each boundary row ``y_b = r_b / A_bb``: DOLFINx
  assembles Dirichlet rows as identity rows (zeroed columns), so this is their exact inverse; on Neumann faces it is
  a Jacobi step, and the PC's smoothing with the full operator does the rest.

The mesh's grid is the finest level of the PC's grid hierarchy (``natural_rows`` maps the DOFs onto it), so a
network trained at 32^3 works at its own resolution on a 64^3 or a 129^3 mesh through smoothed levels, exactly as on
a DMDA; the grid may also be padded to extents a network takes (``multiple``; then it maps to one grid only). Anything else (vector-valued or
higher-degree space, a mesh that is not a box lattice) is a GridError naming what is supported.
"""
from __future__ import annotations

import logging

import numpy as np

from accel.errors import GridError
from accel.integrations.petsc.transfer import GridTransfer

from . import compat

log = logging.getLogger(__name__)

SUPPORTED_CELLS = ("triangle", "quadrilateral", "tetrahedron", "hexahedron")
_LAGRANGE = ("Lagrange", "P", "Q", "CG", "LAGRANGE")
_TOL = 1e-6  # lattice tolerance, relative to the grid step
_MERGE = 1e-9  # coordinates (scaled to [0, 1]) closer than this are one lattice coordinate


def _distinct(t: np.ndarray) -> np.ndarray:
    """The distinct values of ``t`` (scaled to [0, 1]), merging values within _MERGE of the previous one.

    Rounding to a fixed number of decimals splits a coordinate that straddles a rounding boundary into two
    (a 1024^2 unit square was refused as "not uniformly spaced" that way); merging close neighbours does not."""
    v = np.sort(t)
    if len(v) == 0:
        return v
    return v[np.r_[True, np.diff(v) > _MERGE]]


def check_space(V) -> None:
    """Raise GridError unless V is a scalar degree-1 Lagrange space on a supported cell type."""
    family, degree, value_shape = compat.element_info(V)
    cell = V.mesh.topology.cell_type.name
    what = "scalar P1/Q1 (Lagrange degree 1) spaces on box meshes of triangles, quadrilaterals, tetrahedra or hexahedra"
    if value_shape not in ((), (1,)) or V.num_sub_spaces:
        raise GridError(f"the grid transfer supports {what}; got a vector-valued space (value shape {value_shape}). "
                        "Accelerate each scalar block separately or use a classical PC (e.g. GAMG) for this system")
    if family not in _LAGRANGE or degree != 1:
        raise GridError(f"the grid transfer supports {what}; got {family} degree {degree}. Use a degree-1 Lagrange "
                        "space, or pass your own GridTransfer (e.g. an interpolation to a grid) as transfer=")
    if cell not in SUPPORTED_CELLS:
        raise GridError(f"the grid transfer supports {what}; got cells of type {cell}")


class BoxGridTransfer(GridTransfer):
    """Gather/scatter between a P1/Q1 DOLFINx space on a box mesh and the interior grid of its vertex lattice.

    Attributes: ``shape`` (the gathered grid, C order, x last; padded to ``multiple``), ``interior_shape``
    (unpadded), ``spacing`` (of ``shape``), ``lower``/``upper`` (box corners, x first), ``points`` (lattice points
    per axis incl. boundary, x first), ``cell_type``. Build it on every rank of the mesh's communicator (collective).
    """

    def __init__(self, V, multiple: int = 1, min_grid: int = 1):
        from petsc4py import PETSc

        check_space(V)
        mesh = V.mesh
        self.comm = mesh.comm
        self.cell_type = mesh.topology.cell_type.name
        self.dim = tdim = mesh.topology.dim
        imap = V.dofmap.index_map
        n_owned, n_global = imap.size_local, imap.size_global
        first = imap.local_range[0]
        xyz = V.tabulate_dof_coordinates()[:n_owned]

        lattice = self._lattice_indices(xyz, tdim, n_global)
        pts = self.points
        self.lower, self.upper = tuple(self._lo), tuple(self._hi)
        self.spacing = tuple(float((self._hi[a] - self._lo[a]) / (pts[a] - 1)) for a in reversed(range(tdim)))
        interior_x = tuple(p - 2 for p in pts)  # x first
        if min(interior_x) < 1:
            raise GridError(f"the box mesh has {'x'.join(str(p - 1) for p in pts)} cells: it needs at least 2 cells "
                            "per direction for an interior grid")
        self.interior_shape = tuple(reversed(interior_x))
        m = max(1, int(multiple))
        padded_x = tuple(max(int(min_grid), -(-n // m) * m) for n in interior_x)
        self.shape = tuple(reversed(padded_x))
        offsets = [(p - n) // 2 for p, n in zip(padded_x, interior_x)]  # interior centred in the pad
        if self.shape != self.interior_shape:
            log.info("grid transfer pads the %s interior grid to %s (network extents are multiples of %d)",
                     "x".join(map(str, self.interior_shape)), "x".join(map(str, self.shape)), m)

        interior = np.all((lattice > 0) & (lattice < np.asarray(pts) - 1), axis=1)
        strides = np.cumprod([1] + list(padded_x[:-1]))  # x fastest
        pos = ((lattice[interior] - 1 + np.asarray(offsets)) * strides).sum(axis=1)
        self._boundary = np.flatnonzero(~interior).astype(PETSc.IntType)  # local row numbers
        rows = (first + np.flatnonzero(interior)).astype(PETSc.IntType)
        self._natural = np.full(n_owned, -1, dtype=PETSc.IntType)
        self._natural[interior] = pos

        self._vec_layout = PETSc.Vec().createMPI((n_owned, n_global), comm=self.comm)
        self._ngrid = int(np.prod(self.shape))
        nloc = self._ngrid if self.comm.rank == 0 else 0
        self._grid = PETSc.Vec().createMPI((nloc, self._ngrid), comm=self.comm)
        padded = self.shape != self.interior_shape
        # With a pad, answers come back through a second vector so the pad of _grid stays zero for ever; without
        # one, the PC may work in _grid's own memory (grid_view) and no copy is made either way.
        self._grid_back = self._grid.duplicate() if padded else self._grid
        self._view = self._grid.getArray().reshape(self.shape) if self.comm.rank == 0 and not padded else None
        is_from = PETSc.IS().createGeneral(rows, comm=self.comm)
        is_to = PETSc.IS().createGeneral(pos.astype(PETSc.IntType), comm=self.comm)
        self._scatter = PETSc.Scatter().create(self._vec_layout, is_from, self._grid, is_to)
        is_from.destroy()
        is_to.destroy()
        self._inv_diag_b = None  # None: identity rows (DOLFINx's Dirichlet rows), y_b = r_b
        self.n_interior = int(self.comm.allreduce(len(rows)))

    # -- set-up helpers -------------------------------------------------------------------------------------------
    def _lattice_indices(self, xyz: np.ndarray, tdim: int, n_global: int) -> np.ndarray:
        """Lattice index (x first) of every owned DOF; GridError unless the DOFs fill a uniform tensor lattice."""
        from mpi4py import MPI

        comm = self.comm
        if xyz.shape[1] > tdim:
            extra = xyz[:, tdim:]
            spread = comm.allreduce(float(np.ptp(extra)) if extra.size else 0.0, op=MPI.MAX)
            if spread > 0:
                raise GridError(f"the mesh is a {tdim}D manifold in {xyz.shape[1]}D space, not a box; the grid transfer "
                                "supports flat box meshes only (create_rectangle / create_box / create_unit_*)")
        x = xyz[:, :tdim]
        big = np.finfo(float).max
        lo_loc = x.min(axis=0) if len(x) else np.full(tdim, big)
        hi_loc = x.max(axis=0) if len(x) else np.full(tdim, -big)
        lo, hi = np.empty(tdim), np.empty(tdim)
        comm.Allreduce(lo_loc, lo, op=MPI.MIN)
        comm.Allreduce(hi_loc, hi, op=MPI.MAX)
        if np.any(hi <= lo):
            raise GridError("the mesh has zero extent along an axis; the grid transfer needs a box")
        t = (x - lo) / (hi - lo)
        pts = []
        for a in range(tdim):
            vals = _distinct(t[:, a])
            allv = _distinct(np.concatenate(comm.allgather(vals)))
            steps = np.diff(allv)
            if len(allv) < 2 or steps.max() - steps.min() > _TOL * steps.mean():
                raise self._not_a_box(f"the DOF coordinates along axis {'xyz'[a]} are not uniformly spaced")
            pts.append(len(allv))
        lattice_size = int(np.prod(pts))
        if lattice_size != n_global:
            raise self._not_a_box(f"{n_global} DOFs do not fill the {'x'.join(map(str, pts))} lattice their "
                                  "coordinates span")
        scaled = t * (np.asarray(pts) - 1)
        idx = np.rint(scaled).astype(np.int64)
        off = comm.allreduce(float(np.abs(scaled - idx).max()) if len(x) else 0.0, op=MPI.MAX)
        if off > _TOL:
            raise self._not_a_box("some DOFs lie off the lattice")
        # one DOF per lattice point: count them (set-up only)
        strides = np.cumprod([1] + pts[:-1])
        counts = np.bincount((idx * strides).sum(axis=1), minlength=lattice_size)
        total = np.zeros_like(counts)
        comm.Allreduce(counts, total, op=MPI.SUM)
        if np.any(total != 1):
            raise self._not_a_box("several DOFs share a lattice point")
        self._lo, self._hi, self.points = lo, hi, tuple(pts)
        return idx

    @staticmethod
    def _not_a_box(why: str) -> GridError:
        return GridError(f"the mesh is not a structured box mesh ({why}); the DOLFINx grid transfer supports P1/Q1 "
                         "spaces on meshes from create_rectangle / create_box / create_unit_square / create_unit_cube. "
                         "For other meshes pass your own GridTransfer as transfer=, or use a classical PC")

    def set_operator(self, A) -> None:
        """Take the boundary rows' diagonal from operator ``A`` (call again whenever its values change)."""
        d = A.getDiagonal()
        db = d.array_r[self._boundary].copy()
        d.destroy()
        self._inv_diag_b = np.where(db != 0, 1.0 / np.where(db != 0, db, 1.0), 1.0)

    # -- GridTransfer ---------------------------------------------------------------------------------------------
    def natural_rows(self):
        """The owned DOFs as natural indices of the interior grid (-1 on the boundary), so the PC's grid hierarchy
        (the one module every grid source shares) can run its levels from the mesh's grid down to the network's.
        None for a padded grid (the PC then uses this transfer as is, on one grid)."""
        if self.shape != self.interior_shape:
            return None
        return self._natural

    def to_grid(self, x, out):
        from petsc4py import PETSc

        self._scatter.scatter(x, self._grid, PETSc.InsertMode.INSERT_VALUES, PETSc.ScatterMode.FORWARD)
        if out is None:
            return
        if out is not self._view:
            np.copyto(out.reshape(-1), self._grid.array_r, casting="unsafe")

    def from_grid(self, g, y, x):
        from petsc4py import PETSc

        if self.comm.rank == 0 and g is not self._view:
            self._grid_back.array_w[:] = np.asarray(g).reshape(-1)
        self._scatter.scatter(self._grid_back, y, PETSc.InsertMode.INSERT_VALUES, PETSc.ScatterMode.REVERSE)
        if len(self._boundary):
            yb = x.array_r[self._boundary]
            y.array_w[self._boundary] = yb if self._inv_diag_b is None else yb * self._inv_diag_b

    def grid_view(self):
        """Rank 0: the grid buffer (the gather vector's own memory); None elsewhere and when the grid is padded."""
        return self._view

    def destroy(self):
        self._view = None
        if self._grid_back is self._grid:
            self._grid_back = None
        for name in ("_scatter", "_grid", "_grid_back", "_vec_layout"):
            obj = getattr(self, name, None)
            if obj is not None:
                obj.destroy()
                setattr(self, name, None)

    def __repr__(self):
        return (f"BoxGridTransfer({self.cell_type}, points={'x'.join(map(str, self.points))}, "
                f"grid={'x'.join(map(str, self.shape))})")
