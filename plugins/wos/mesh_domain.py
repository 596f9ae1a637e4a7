"""Domains bounded by a segment mesh (2D) or a triangle mesh (3D), with closest points from fcpw's BVH.

fcpw answers closest-point queries in C++ (float32); we only copy the distances out of its interaction list. The
inside test (``contains``) needs a watertight boundary and is used for checks, not in the walk loop: walks that
start inside stay inside.
"""
from __future__ import annotations

import numpy as np

from .domains import Domain, DomainError


class MeshDomain(Domain):
    """Interior of a closed boundary mesh: ``vertices`` (n, dim) and ``cells`` (m, dim) vertex indices."""

    def __init__(self, vertices, cells, check: bool = True, grid_nodes: int | None = None):
        import fcpw

        V = np.asarray(vertices, dtype=np.float64)
        C = np.asarray(cells)
        if V.ndim != 2 or V.shape[1] not in (2, 3):
            raise DomainError(f"mesh vertices must have shape (n, 2) or (n, 3), got {V.shape}")
        self.dim = V.shape[1]
        if C.ndim != 2 or C.shape[1] != self.dim or not np.issubdtype(C.dtype, np.integer):
            raise DomainError(f"a {self.dim}D boundary mesh needs integer cells of shape (m, {self.dim}) "
                              f"({'segments' if self.dim == 2 else 'triangles'}), got {C.shape} {C.dtype}")
        if C.size == 0 or C.min() < 0 or C.max() >= len(V):
            raise DomainError(f"mesh cells index vertices outside 0..{len(V) - 1}")
        self.vertices, self.cells = V, C.astype(np.int32)
        self.bounds = (V.min(axis=0), V.max(axis=0))
        self._fcpw = fcpw
        scene = fcpw.scene_2D() if self.dim == 2 else fcpw.scene_3D()
        scene.set_object_count(1)
        scene.set_object_vertices(np.asfortranarray(V, dtype=np.float32), 0)
        if self.dim == 2:
            scene.set_object_line_segments(np.asfortranarray(self.cells), 0)
        else:
            scene.set_object_triangles(np.asfortranarray(self.cells), 0)
        scene.build(fcpw.aggregate_type.bvh_surface_area, True)
        self.scene = scene
        self._build_grid(grid_nodes if grid_nodes is not None else (1 << 16 if self.dim == 2 else 1 << 17))
        if check and not np.any(self.contains(_interior_probe(self))):
            raise DomainError("the boundary mesh encloses no sample point: is it closed (watertight)?")

    def _query(self, X):
        Q = np.asfortranarray(X.T, dtype=np.float32)
        L = self._fcpw.interaction_2D_list() if self.dim == 2 else self._fcpw.interaction_3D_list()
        self.scene.find_closest_points(Q, np.full(Q.shape[0], np.inf, dtype=np.float32), L)
        return L

    def _exact(self, X):
        L = self._query(X)
        return np.fromiter((i.d for i in L), dtype=X.dtype if X.dtype in (np.float32, np.float64) else np.float64,
                           count=X.shape[1])

    def _build_grid(self, nodes: int):
        """Exact distances at the nodes of a uniform grid, so most walk steps skip the BVH.

        The distance is 1-Lipschitz, so ``d(x) >= d(node) - |x - node|`` for the nearest node: a safe radius. Only
        where that bound drops below two cell widths (the last few steps of a walk, near the boundary) is fcpw
        asked for the exact distance.
        """
        if nodes <= 0:
            self._grid = None
            return
        lo, hi = self.bounds
        per_axis = max(8, int(round(nodes ** (1 / self.dim))))
        h = float(np.max(hi - lo)) / (per_axis - 3)
        origin = lo - h
        shape = tuple(int(np.ceil((hi[i] - origin[i]) / h)) + 2 for i in range(self.dim))
        axes = [origin[i] + h * np.arange(shape[i]) for i in range(self.dim)]
        G = np.stack([a.ravel() for a in np.meshgrid(*axes, indexing="ij")])
        self._grid = (origin, h, shape, self._exact(G.astype(np.float32)).astype(np.float32))
        self._strides = np.array([int(np.prod(shape[i + 1:])) for i in range(self.dim)])
        self._near = 2 * h

    def radius(self, X):
        if self._grid is None:
            return self._exact(X)
        origin, h, shape, D = self._grid
        t = X.dtype.type
        flat = None
        dist2 = None
        for i in range(self.dim):
            k = np.rint((X[i] - t(origin[i])) * t(1 / h))
            off = X[i] - (k * t(h) + t(origin[i]))
            dist2 = off * off if dist2 is None else dist2 + off * off
            k = np.clip(k, 0, shape[i] - 1).astype(np.int64)
            flat = k * self._strides[i] if flat is None else flat + k * self._strides[i]
        r = D.take(flat).astype(X.dtype, copy=False) - np.sqrt(dist2)
        near = np.flatnonzero(r < t(self._near))
        if near.size:
            r[near] = self._exact(X.take(near, axis=1))
        return r

    def closest(self, X):
        L = self._query(X)
        return np.array([i.p for i in L], dtype=np.float64).T.astype(X.dtype, copy=False)

    def contains(self, X, tol: float = 0.0):
        # one call per point: fcpw 1.2's batched numpy overload of contains() leaves its result array at zero
        Q = np.ascontiguousarray(X.T, dtype=np.float32)
        inside = np.fromiter((self.scene.contains(q) for q in Q), dtype=bool, count=Q.shape[0])
        if tol > 0:
            inside |= self._exact(X) <= tol
        return inside

    def sdf(self, X):
        d = self._exact(X).astype(np.float64)
        return np.where(self.contains(X), -d, d)


def _interior_probe(domain):
    lo, hi = domain.bounds
    g = np.linspace(0.05, 0.95, 9)
    axes = np.meshgrid(*[lo[i] + g * (hi[i] - lo[i]) for i in range(domain.dim)], indexing="ij")
    return np.stack([a.ravel() for a in axes])


def boundary_of_dolfinx_mesh(mesh) -> MeshDomain:
    """The exterior facets of a DOLFINx mesh (0.5+) as a MeshDomain (segments in 2D, triangles in 3D)."""
    import dolfinx.cpp.mesh as cmesh
    from dolfinx import mesh as dmesh

    tdim = mesh.topology.dim
    if tdim not in (2, 3):
        raise DomainError(f"need a 2D or 3D DOLFINx mesh, got topological dimension {tdim}")
    mesh.topology.create_connectivity(tdim - 1, tdim)
    facets = dmesh.exterior_facet_indices(mesh.topology)
    cpp_mesh = getattr(mesh, "_cpp_object", None) or getattr(mesh, "_mesh", mesh)  # the wrapper differs by version
    geo = cmesh.entities_to_geometry(cpp_mesh, tdim - 1, facets, False)
    if geo.shape[1] != tdim:
        raise DomainError("only affine (P1 geometry) boundary facets are supported: interpolate the mesh to P1 first")
    x = mesh.geometry.x[:, :tdim]
    used, cells = np.unique(geo, return_inverse=True)
    return MeshDomain(x[used], cells.reshape(geo.shape))
