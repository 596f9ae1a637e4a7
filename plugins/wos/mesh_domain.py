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

    def __init__(self, vertices, cells, check: bool = True):
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
        if check and not np.any(self.contains(_interior_probe(self))):
            raise DomainError("the boundary mesh encloses no sample point: is it closed (watertight)?")

    def _query(self, X):
        Q = np.asfortranarray(X.T, dtype=np.float32)
        L = self._fcpw.interaction_2D_list() if self.dim == 2 else self._fcpw.interaction_3D_list()
        self.scene.find_closest_points(Q, np.full(Q.shape[0], np.inf, dtype=np.float32), L)
        return L

    def radius(self, X):
        L = self._query(X)
        return np.fromiter((i.d for i in L), dtype=X.dtype if X.dtype in (np.float32, np.float64) else np.float64,
                           count=X.shape[1])

    def closest(self, X):
        L = self._query(X)
        return np.array([i.p for i in L], dtype=np.float64).T.astype(X.dtype, copy=False)

    def contains(self, X, tol: float = 0.0):
        # one call per point: fcpw 1.2's batched numpy overload of contains() leaves its result array at zero
        Q = np.ascontiguousarray(X.T, dtype=np.float32)
        inside = np.fromiter((self.scene.contains(q) for q in Q), dtype=bool, count=Q.shape[0])
        if tol > 0:
            inside |= self.radius(X) <= tol
        return inside

    def sdf(self, X):
        d = self.radius(X).astype(np.float64)
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
