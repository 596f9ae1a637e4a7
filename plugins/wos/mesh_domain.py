"""Domains bounded by a segment mesh (2D) or a triangle mesh (3D), walked inside the compiled kernel.

The walk radius (kernel._mesh_bound_pass, one branch-free pass over the lanes) is a lower bound on the distance:
a uniform grid of exact node distances gives ``d(node) - |x - node|`` (the distance is 1-Lipschitz), and every node
within a few grid spacings of the boundary has up to MESH_PLANES plane rows ``(n, c')`` with
``min_j (n_j.x - c'_j) <= dist(x, mesh)`` for every point x of its cell (_plane_rows): each candidate primitive (every
primitive within ``d(node) + 2 * half_diagonal`` of the node, which includes the closest one of any point of the
cell) is assigned to one row, whose offset absorbs the largest difference between the row's plane and the
primitive's over the cell. Where the nearby boundary is flat or convex the bound is the exact distance (a cube's
faces: one row per face), on curved parts it is within a small slack, near reflex parts it is weaker but still a
lower bound. Only where the bound is below epsilon (the walk's last step, mostly) is the exact distance computed,
over the node's candidate list, so the walk stops exactly when the true distance is below epsilon; the same search
gives the exit's closest point. Plane rows are deduplicated (nodes near one face share one block), so the tables
stay small enough for the cache.

Why not fcpw's batched queries: its ``find_closest_points`` took about 600 ns per point on this CPU (1024-segment
polygon) plus 60 ns to read each result back from its Python interaction objects, and its batched numpy
``contains`` (1.2.0) leaves the result array at zero whatever the dtype (int32, uint32, int64, bool); a whole walk
step here costs less than its query alone. The inside test here is a ray-crossing parity (2D: one horizontal ray;
3D: majority over three rays in generic directions), used for checks and for orienting the planes, not in the walk.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import kernel
from .domains import Domain, DomainError


class MeshDomain(Domain):
    """Interior of a closed boundary mesh: ``vertices`` (n, dim) and ``cells`` (m, dim) vertex indices.

    grid_nodes: nodes of the distance grid (default 2^14: finer grids cost set-up time and cache misses, coarser ones
    longer candidate lists; for boundary meshes of 10^5 primitives and more a finer grid keeps the lists short).
    near_cells: nodes within this many grid spacings (plus half a cell diagonal) of the boundary get candidate lists
    and plane rows (default 2).
    """

    signed_in_kernel = False  # the kernel knows the distance to the mesh, not its sign: no CSG with meshes there

    def __init__(self, vertices, cells, check: bool = True, grid_nodes: int | None = None,
                 near_cells: float = 2.0):
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
        if not near_cells > 0:
            raise DomainError(f"near_cells must be positive, got {near_cells}")
        self.near_cells = float(near_cells)
        self.vertices, self.cells = V, C.astype(np.int64)
        self.bounds = (V.min(axis=0), V.max(axis=0))
        self._build(grid_nodes if grid_nodes is not None else 1 << 14)
        if check and not _encloses_a_probe(self):
            raise DomainError("the boundary mesh encloses no sample point: is it closed (watertight)?")

    def _build(self, nodes: int):
        lo, hi = self.bounds
        dim = self.dim
        per_axis = max(8, int(round(nodes ** (1 / dim))))
        h = float(np.max(hi - lo)) / (per_axis - 3)
        origin = lo - h
        shape = [int(np.ceil((hi[i] - origin[i]) / h)) + 2 for i in range(dim)]
        axes = [origin[i] + h * np.arange(shape[i]) for i in range(dim)]
        G = np.ascontiguousarray(np.stack([a.ravel() for a in np.meshgrid(*axes, indexing="ij")]))
        V, C = np.ascontiguousarray(self.vertices.ravel()), np.ascontiguousarray(self.cells.ravel())
        # the primitives binned into the grid's cells, so that set-up is a local search per node, not a pass over
        # every primitive (a 75k-triangle sphere: 305 s by brute force)
        cshape = np.array([n - 1 for n in shape] + [1] * (3 - dim), dtype=np.int64)
        o3 = np.array(list(origin) + [0.0] * (3 - dim))
        cstarts, cprims = _bin_primitives(V, C, dim, o3, h, cshape)
        nshape = np.array(list(shape) + [1] * (3 - dim), dtype=np.int64)
        dnode = _node_distances(G, V, C, dim, h, o3, nshape, cshape, cstarts, cprims)
        half_diag = 0.5 * h * math.sqrt(dim)
        near = self.near_cells * h
        starts, lists, _ = _candidate_lists(G, dnode, dnode < near + half_diag, 2 * half_diag, V, C, dim, h,
                                            nshape, cshape, cstarts, cprims)
        N, c = _inward_planes(self)
        idx = np.flatnonzero(np.diff(starts) > 0)
        K = kernel.MESH_PLANES[dim]
        rows = _plane_rows(G, idx, starts, lists, N, c, h, K, dim).reshape(len(idx), 4 * K)
        # plane blocks are shared by every node with the same rows (all nodes near one flat face share one)
        blocks, block_of = np.unique(rows, axis=0, return_inverse=True)
        if blocks.size == 0:
            blocks = np.zeros((1, 4 * K))
        block_off = np.full(dnode.size, -1.0)
        block_off[idx] = block_of.reshape(-1) * (4 * K)
        self.h, self.near, self.shape, self.origin = h, near, shape, origin
        self._arrays = dict(nodes=np.ascontiguousarray(np.column_stack([dnode, block_off]).ravel()),
                            blocks=np.ascontiguousarray(blocks.ravel()), starts=starts, lists=lists,
                            prims=_primitive_table(self.vertices, self.cells))

    def emit(self, b):
        A = self._arrays
        o3 = list(self.origin) + [0.0] * (3 - self.dim)
        s3 = list(self.shape) + [1] * (3 - self.dim)
        if b.floats([]) % 2:
            b.floats([0.0])  # node pairs start on an even offset: none straddles a cache line
        row = o3 + [self.h, 1 / self.h] + s3 + [b.floats(A["nodes"]), b.floats(A["blocks"]), b.floats(A["prims"]),
                                               len(self.cells), b.ints(A["starts"]), b.ints(A["lists"])]
        assert len(row) == kernel.MESH_ROW
        b.op(kernel.OP_MESH, b.floats(row))

    def _mesh_program(self):
        from .program import compile_domain

        prog = compile_domain(self)
        return prog, int(prog.ops[0, 1])

    def _exact(self, X):
        prog, o = self._mesh_program()
        d, _ = kernel.mesh_closest_points(prog.fp, prog.ip, o, np.ascontiguousarray(X, dtype=np.float64))
        return d

    def closest(self, X):
        prog, o = self._mesh_program()
        _, P = kernel.mesh_closest_points(prog.fp, prog.ip, o, np.ascontiguousarray(X, dtype=np.float64))
        return P

    def contains(self, X, tol: float = 0.0):
        X = np.ascontiguousarray(X, dtype=np.float64)
        V = self.vertices.reshape(-1)
        inside = _contains_2d(X, V, self.cells.reshape(-1)) if self.dim == 2 else \
            _contains_3d(X, V, self.cells.reshape(-1))
        if tol > 0:
            inside |= self._exact(X) <= tol
        return inside

    def sdf(self, X):
        d = self._exact(X)
        return np.where(self.contains(X), -d, d)


def _primitive_table(V, C):
    """The kernel's per-primitive rows (layout at kernel.PRIM_WIDTH2 / PRIM_WIDTH3), flattened."""
    A = V[C[:, 0]]
    E0 = V[C[:, 1]] - A
    with np.errstate(divide="ignore"):
        inv = lambda q: np.where(q > 0, 1.0 / np.where(q > 0, q, 1.0), 0.0)  # noqa: E731 (0 for degenerate parts)
        if V.shape[1] == 2:
            ee = np.sum(E0 * E0, axis=1)
            N = np.column_stack([-E0[:, 1], E0[:, 0]]) / np.sqrt(np.where(ee > 0, ee, 1.0))[:, None]
            return np.ascontiguousarray(np.column_stack([A, E0, inv(ee), N]).ravel())
        E1 = V[C[:, 2]] - A
        N = np.cross(E0, E1)
        nn = np.linalg.norm(N, axis=1)
        N = N / np.where(nn > 0, nn, 1.0)[:, None]
        d00, d01, d11 = np.sum(E0 * E0, axis=1), np.sum(E0 * E1, axis=1), np.sum(E1 * E1, axis=1)
        den = d00 * d11 - d01 * d01
        # a sliver whose Gram determinant is lost to rounding is treated as degenerate: edges only (still exact)
        inv_den = np.where(den > 1e-12 * d00 * d11, inv(den), 0.0)
        rows = np.column_stack([A, E0, E1, N, d00, d01, d11, inv_den, inv(d00), inv(d11),
                                inv(np.sum((E1 - E0) ** 2, axis=1))])
    return np.ascontiguousarray(rows.ravel())


def _inward_planes(domain):
    """Unit normals n (m, 3) pointing into the domain and offsets c of the primitives' planes (lines in 2D; z = 0),
    so that n.x - c <= dist(x, primitive) for every x. The primitives are first oriented consistently across shared
    faces (edges in 3D, vertices in 2D), then each connected piece of the boundary gets its side from the inside test
    at a point just off its largest primitives; where the boundary is not a manifold (a face shared by other than two
    primitives) every primitive is tested that way instead. Degenerate primitives get n = 0, c = 0."""
    V, C = domain.vertices, domain.cells
    A = V[C[:, 0]]
    if domain.dim == 2:
        E = V[C[:, 1]] - A
        N = np.column_stack([-E[:, 1], E[:, 0]])
    else:
        N = np.cross(V[C[:, 1]] - A, V[C[:, 2]] - A)
    nn = np.linalg.norm(N, axis=1)
    N = np.where(nn[:, None] > 0, N / np.where(nn > 0, nn, 1.0)[:, None], 0.0)
    centre = V[C].mean(axis=1)
    tau = 1e-6 * float(np.max(domain.bounds[1] - domain.bounds[0]))
    V1, C1 = np.ascontiguousarray(V.ravel()), np.ascontiguousarray(C.ravel())

    def inside(points):
        probe = np.ascontiguousarray(points.T)
        return _contains_2d(probe, V1, C1) if domain.dim == 2 else _contains_3d(probe, V1, C1)

    orientation = _consistent_orientation(C)
    if orientation is None:
        sign = np.where(inside(centre + tau * N), 1.0, -1.0)
    else:
        flip, piece = orientation
        sign = flip.astype(np.float64)
        for k in range(piece.max() + 1):
            members = np.flatnonzero(piece == k)
            # three of the largest primitives vote: one probe landing on an edge of the ray test is outvoted
            top = members[np.argsort(-nn[members], kind="stable")[:3]]
            votes = inside(centre[top] + tau * (flip[top, None] * N[top]))
            sign[members] *= 1.0 if 2 * votes.sum() >= len(top) else -1.0
    N = N * sign[:, None]
    c = np.sum(N * A, axis=1)
    if domain.dim == 2:
        N = np.column_stack([N, np.zeros(len(N))])
    return np.ascontiguousarray(N), np.ascontiguousarray(c)


def _consistent_orientation(C):
    """(flip (m,) of +-1, piece (m,) connected-piece index) such that the primitives times flip traverse every shared
    face in opposite directions, or None when some face is shared by other than two primitives or no consistent
    orientation exists (not a closed manifold)."""
    m, dim = C.shape
    if dim == 2:
        # a segment's "faces" are its vertices; it leaves its start (+1) and enters its end (-1)
        keys = C.reshape(-1)
        direction = np.tile([1, -1], m)
    else:
        a, b = C, np.roll(C, -1, axis=1)
        keys = np.minimum(a, b).astype(np.int64) * (int(C.max()) + 1) + np.maximum(a, b)
        keys = keys.reshape(-1)
        direction = np.where(a < b, 1, -1).reshape(-1)
    owner = np.repeat(np.arange(m), dim)
    order = np.argsort(keys, kind="stable")
    keys, direction, owner = keys[order], direction[order], owner[order]
    first = np.r_[True, keys[1:] != keys[:-1]]
    counts = np.diff(np.r_[np.flatnonzero(first), keys.size])
    if np.any(counts != 2):
        return None
    # pairs (owner[2i], owner[2i + 1]) share a face; same = traversed the same way: one of them must be flipped
    p, q = owner[0::2], owner[1::2]
    same = direction[0::2] == direction[1::2]
    return _propagate_flips(m, p, q, same)


@njit(cache=True)
def _propagate_flips_kernel(m, p, q, same):
    deg = np.zeros(m + 1, dtype=np.int64)
    for e in range(p.size):
        deg[p[e] + 1] += 1
        deg[q[e] + 1] += 1
    start = np.cumsum(deg)
    fill = start[:-1].copy()
    nbr = np.empty(2 * p.size, dtype=np.int64)
    rel = np.empty(2 * p.size, dtype=np.int64)
    for e in range(p.size):
        r = -1 if same[e] else 1
        nbr[fill[p[e]]], rel[fill[p[e]]] = q[e], r
        fill[p[e]] += 1
        nbr[fill[q[e]]], rel[fill[q[e]]] = p[e], r
        fill[q[e]] += 1
    flip = np.zeros(m, dtype=np.int64)
    piece = np.full(m, -1, dtype=np.int64)
    stack = np.empty(m, dtype=np.int64)
    pieces = 0
    for s in range(m):
        if piece[s] >= 0:
            continue
        flip[s], piece[s] = 1, pieces
        top = 0
        stack[0] = s
        while top >= 0:
            t = stack[top]
            top -= 1
            for k in range(start[t], start[t + 1]):
                u = nbr[k]
                want = flip[t] * rel[k]
                if piece[u] < 0:
                    flip[u], piece[u] = want, pieces
                    top += 1
                    stack[top] = u
                elif flip[u] != want:
                    return flip, piece, False
        pieces += 1
    return flip, piece, True


def _propagate_flips(m, p, q, same):
    flip, piece, ok = _propagate_flips_kernel(m, p.astype(np.int64), q.astype(np.int64), same)
    return (flip, piece) if ok else None


@njit(cache=True)
def _plane_rows(G, idx, starts, lists, N, c, h, K, dim):
    """Up to K plane rows (n, c') per near node idx[t]. Every candidate primitive k is assigned to the chosen plane j
    with the smallest sigma_kj = max over the node's cell of (s_j - s_k)(x), s(x) = n.x - c (linear: its value at
    the node plus h/2 |n_j - n_k|_1), and c'_j = c_j + the largest sigma of its primitives, so that
    n_j.x - c'_j <= s_k(x) <= dist_k(x) in the cell. Planes are added greedily (first the nearest primitive's, then
    the worst-served primitive's) while some sigma exceeds 1e-9 h. Unused rows are (0, 0, 0, -inf)."""
    out = np.zeros((idx.size, K, 4))
    chosen = np.zeros(K, dtype=np.int64)
    for t in range(idx.size):
        i = idx[t]
        x0, x1, x2 = G[0, i], G[1, i], G[2, i] if dim == 3 else 0.0
        a0, a1 = starts[i], starts[i + 1]
        chosen[0] = lists[a0]
        nch = 1
        sigma = np.full(K, -np.inf)
        while True:
            sigma[:] = -np.inf
            worst, worst_k = -np.inf, -1
            for m in range(a0, a1):
                k = lists[m]
                sk = N[k, 0] * x0 + N[k, 1] * x1 + N[k, 2] * x2 - c[k]
                best, bq = np.inf, 0
                for q in range(nch):
                    j = chosen[q]
                    sj = N[j, 0] * x0 + N[j, 1] * x1 + N[j, 2] * x2 - c[j]
                    sig = sj - sk + 0.5 * h * (abs(N[j, 0] - N[k, 0]) + abs(N[j, 1] - N[k, 1])
                                               + abs(N[j, 2] - N[k, 2]))
                    if sig < best:
                        best, bq = sig, q
                sigma[bq] = max(sigma[bq], best)
                if best > worst:
                    worst, worst_k = best, k
            if worst <= 1e-9 * h or nch == K:
                break
            chosen[nch] = worst_k
            nch += 1
        for q in range(K):
            if q < nch and sigma[q] > -np.inf:
                j = chosen[q]
                out[t, q, 0], out[t, q, 1], out[t, q, 2] = N[j, 0], N[j, 1], N[j, 2]
                # n.x - c' is evaluated in floating point: a relative 1e-12 margin keeps it a lower bound
                out[t, q, 3] = c[j] + sigma[q] + 1e-12 * (1.0 + abs(c[j]) + abs(sigma[q]) + h)
            else:
                out[t, q, 3] = -np.inf
    return out


@njit(cache=True)
def _prim_distance(x, y, z, V, C, dim, p):
    if dim == 2:
        a, b = C[2 * p], C[2 * p + 1]
        return math.sqrt(kernel._seg_dist2(x, y, V[2 * a], V[2 * a + 1], V[2 * b], V[2 * b + 1])[0])
    a, b, c = C[3 * p], C[3 * p + 1], C[3 * p + 2]
    qx, qy, qz = kernel._tri_closest(x, y, z, V[3 * a], V[3 * a + 1], V[3 * a + 2], V[3 * b], V[3 * b + 1],
                                     V[3 * b + 2], V[3 * c], V[3 * c + 1], V[3 * c + 2])
    return math.sqrt((qx - x) ** 2 + (qy - y) ** 2 + (qz - z) ** 2)


@njit(cache=True)
def _bin_primitives(V, C, dim, o3, h, cshape):
    """CSR (starts over the cells in C order, primitive indices) of the primitives whose bounding box meets each cell
    of the grid (cells of side h from o3; cshape cells per axis, 1 on the unused axis in 2D)."""
    m = C.size // dim
    ncell = cshape[0] * cshape[1] * cshape[2]
    lo = np.zeros((m, 3), dtype=np.int64)
    hi = np.zeros((m, 3), dtype=np.int64)
    counts = np.zeros(ncell + 1, dtype=np.int64)
    for p in range(m):
        for k in range(dim):
            a, b = np.inf, -np.inf
            for q in range(dim):
                v = V[dim * C[dim * p + q] + k]
                a, b = min(a, v), max(b, v)
            # a primitive on a cell face belongs to both cells: the box is widened by a rounding margin
            eps = 1e-9 * h
            lo[p, k] = min(max(int(math.floor((a - eps - o3[k]) / h)), 0), cshape[k] - 1)
            hi[p, k] = min(max(int(math.floor((b + eps - o3[k]) / h)), 0), cshape[k] - 1)
        for i in range(lo[p, 0], hi[p, 0] + 1):
            for j in range(lo[p, 1], hi[p, 1] + 1):
                for k in range(lo[p, 2], hi[p, 2] + 1):
                    counts[(i * cshape[1] + j) * cshape[2] + k + 1] += 1
    starts = np.cumsum(counts)
    fill = starts[:-1].copy()
    prims = np.empty(starts[-1], dtype=np.int64)
    for p in range(m):
        for i in range(lo[p, 0], hi[p, 0] + 1):
            for j in range(lo[p, 1], hi[p, 1] + 1):
                for k in range(lo[p, 2], hi[p, 2] + 1):
                    c = (i * cshape[1] + j) * cshape[2] + k
                    prims[fill[c]] = p
                    fill[c] += 1
    return starts, prims


@njit(cache=True)
def _node_index(i, nshape):
    return i // (nshape[1] * nshape[2]), (i // nshape[2]) % nshape[1], i % nshape[2]


@njit(cache=True)
def _ring_cells(ni, ring, cshape, dim, out):
    """The cells (flat indices, into out; returns their count) of ring ``ring`` around node ni = (i, j, k): those in
    the box of cell indices [n - 1 - ring, n + ring] per axis but not in the previous ring's box. Every point of a
    ring-r cell is at least r h from the node."""
    count = 0
    lo0, hi0 = ni[0] - 1 - ring, ni[0] + ring
    lo1, hi1 = ni[1] - 1 - ring, ni[1] + ring
    lo2, hi2 = (ni[2] - 1 - ring, ni[2] + ring) if dim == 3 else (0, 0)
    wall = hi1 - lo1 if dim == 2 else hi2 - lo2  # the step between the two faces of the last axis
    for i in range(max(lo0, 0), min(hi0, cshape[0] - 1) + 1):
        face_i = i == lo0 or i == hi0
        if dim == 2:
            if face_i:
                for j in range(max(lo1, 0), min(hi1, cshape[1] - 1) + 1):
                    out[count] = i * cshape[1] + j
                    count += 1
            else:
                for j in (lo1, lo1 + wall):
                    if 0 <= j < cshape[1]:
                        out[count] = i * cshape[1] + j
                        count += 1
            continue
        for j in range(max(lo1, 0), min(hi1, cshape[1] - 1) + 1):
            if face_i or j == lo1 or j == hi1:
                for k in range(max(lo2, 0), min(hi2, cshape[2] - 1) + 1):
                    out[count] = (i * cshape[1] + j) * cshape[2] + k
                    count += 1
            else:
                for k in (lo2, lo2 + wall):
                    if 0 <= k < cshape[2]:
                        out[count] = (i * cshape[1] + j) * cshape[2] + k
                        count += 1
    return count


@njit(cache=True)
def _ring_is_outside(ni, ring, cshape, dim):
    """True when the ring's box covers every cell: no later ring has any."""
    for a in range(dim):
        if ni[a] - 1 - ring > 0 or ni[a] + ring < cshape[a] - 1:
            return False
    return True


@njit(cache=True)
def _bounding_spheres(V, C, dim):
    """Centroid (m, 3) and radius (m,) of a sphere around each primitive."""
    m = C.size // dim
    centre = np.zeros((m, 3))
    rad = np.zeros(m)
    for p in range(m):
        for k in range(dim):
            centre[p, :dim] += V[dim * C[dim * p + k]:dim * C[dim * p + k] + dim] / dim
        for k in range(dim):
            q = V[dim * C[dim * p + k]:dim * C[dim * p + k] + dim] - centre[p, :dim]
            rad[p] = max(rad[p], math.sqrt(np.sum(q * q)))
    return centre, rad


@njit(cache=True)
def _cell_box_distance(x, c, o3, h, cshape, dim):
    """Distance from point x (3,) to the box of cell c."""
    idx = ((c // (cshape[1] * cshape[2])), (c // cshape[2]) % cshape[1], c % cshape[2])
    d2 = 0.0
    for k in range(dim):
        lo = o3[k] + h * idx[k]
        gap = max(lo - x[k], x[k] - lo - h, 0.0)
        d2 += gap * gap
    return math.sqrt(d2)


@njit(cache=True)
def _node_distances(G, V, C, dim, h, o3, nshape, cshape, cstarts, cprims):
    """Exact distance from every grid node to the mesh: rings of binned cells outwards until the best distance found
    is within the next ring's lower bound; cells and primitives (bounding spheres) provably farther than the best so
    far are skipped (where many primitives are almost equidistant, as near a sphere's centre, these skips are what
    keeps set-up short)."""
    n = G.shape[1]
    m = C.size // dim
    out = np.empty(n)
    centre, rad = _bounding_spheres(V, C, dim)
    seen = np.full(m, -1, dtype=np.int64)
    cells = np.empty(cshape[0] * cshape[1] * cshape[2], dtype=np.int64)
    ni = np.zeros(3, dtype=np.int64)
    x3 = np.zeros(3)
    for i in range(n):
        ni[0], ni[1], ni[2] = _node_index(i, nshape)
        x, y, z = G[0, i], G[1, i], G[2, i] if dim == 3 else 0.0
        x3[0], x3[1], x3[2] = x, y, z
        best = np.inf
        ring = 0
        while True:
            nc = _ring_cells(ni, ring, cshape, dim, cells)
            for t in range(nc):
                c = cells[t]
                if cstarts[c] == cstarts[c + 1] or _cell_box_distance(x3, c, o3, h, cshape, dim) >= best:
                    continue
                for q in range(cstarts[c], cstarts[c + 1]):
                    p = cprims[q]
                    if seen[p] != i:
                        seen[p] = i
                        dc = math.sqrt((x - centre[p, 0]) ** 2 + (y - centre[p, 1]) ** 2 + (z - centre[p, 2]) ** 2)
                        if dc - rad[p] < best:
                            best = min(best, _prim_distance(x, y, z, V, C, dim, p))
            if best <= (ring + 1) * h or _ring_is_outside(ni, ring, cshape, dim):
                break
            ring += 1
        out[i] = best
    return out


@njit(cache=True)
def _candidate_lists(G, dnode, listed, extra, V, C, dim, h, nshape, cshape, cstarts, cprims):
    """CSR lists (starts (nodes + 1,), primitive indices, their distances to the node) of the primitives within
    dnode + extra of each listed node, nearest first."""
    n = G.shape[1]
    m = C.size // dim
    centre, rad = _bounding_spheres(V, C, dim)
    seen = np.full(m, -1, dtype=np.int64)
    cells = np.empty(cshape[0] * cshape[1] * cshape[2], dtype=np.int64)
    ni = np.zeros(3, dtype=np.int64)
    starts = np.zeros(n + 1, dtype=np.int64)
    found_p = np.empty(0, dtype=np.int64)
    found_d = np.empty(0)
    size = 0
    for i in range(n):
        starts[i + 1] = starts[i]
        if not listed[i]:
            continue
        R = dnode[i] + extra
        ni[0], ni[1], ni[2] = _node_index(i, nshape)
        k0 = size
        # rings up to the first one whose lower bound exceeds R
        for ring in range(int(R / h) + 1):
            nc = _ring_cells(ni, ring, cshape, dim, cells)
            for t in range(nc):
                c = cells[t]
                for q in range(cstarts[c], cstarts[c + 1]):
                    p = cprims[q]
                    if seen[p] == i:
                        continue
                    seen[p] = i
                    dp = _near_prim(G, i, centre, rad, R, V, C, dim, p)
                    if dp >= 0:
                        if size == found_p.size:
                            grow = max(1024, 2 * size)
                            found_p = np.concatenate((found_p, np.empty(grow, dtype=np.int64)))
                            found_d = np.concatenate((found_d, np.empty(grow)))
                        found_p[size], found_d[size] = p, dp
                        size += 1
            if _ring_is_outside(ni, ring, cshape, dim):
                break
        # nearest first, so a query can stop once the rest are provably farther; sorted from index order, as the
        # scan over every primitive found them, so ties (and the plane rows chosen from this order) are unchanged
        seg_p = found_p[k0:size].copy()
        seg_d = found_d[k0:size].copy()
        idx = np.argsort(seg_p, kind="mergesort")
        seg_p, seg_d = seg_p[idx], seg_d[idx]
        order = np.argsort(seg_d)
        found_p[k0:size] = seg_p[order]
        found_d[k0:size] = seg_d[order]
        starts[i + 1] = size
    return starts, found_p[:size].copy(), found_d[:size].copy()


@njit(cache=True)
def _near_prim(G, i, centre, rad, R, V, C, dim, p):
    """Distance from node i to primitive p when it is within R (bounding sphere first), else -1."""
    q = 0.0
    for k in range(dim):
        q += (G[k, i] - centre[p, k]) ** 2
    if math.sqrt(q) > R + rad[p]:
        return -1.0
    d = _prim_distance(G[0, i], G[1, i], G[2, i] if dim == 3 else 0.0, V, C, dim, p)
    return d if d <= R else -1.0


@njit(cache=True)
def _contains_2d(X, V, C):
    n = X.shape[1]
    out = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        x, y = X[0, i], X[1, i]
        c = False
        for p in range(C.size // 2):
            ax, ay, bx, by = V[2 * C[2 * p]], V[2 * C[2 * p] + 1], V[2 * C[2 * p + 1]], V[2 * C[2 * p + 1] + 1]
            if (ay > y) != (by > y) and x < ax + (y - ay) * (bx - ax) / (by - ay):
                c = not c
        out[i] = c
    return out


@njit(cache=True)
def _contains_3d(X, V, C):
    # three generic directions: a ray through an edge or vertex (double count) is outvoted by the others
    D = np.array([[1.0, 1.41421356, 3.14159265], [-2.71828183, 1.0, 1.73205081], [0.57721566, -2.23606798, 1.0]])
    n = X.shape[1]
    out = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        votes = 0
        for r in range(3):
            dx, dy, dz = D[r, 0], D[r, 1], D[r, 2]
            c = False
            for p in range(C.size // 3):
                a, b, cc = 3 * C[3 * p], 3 * C[3 * p + 1], 3 * C[3 * p + 2]
                e1x, e1y, e1z = V[b] - V[a], V[b + 1] - V[a + 1], V[b + 2] - V[a + 2]
                e2x, e2y, e2z = V[cc] - V[a], V[cc + 1] - V[a + 1], V[cc + 2] - V[a + 2]
                px, py, pz = dy * e2z - dz * e2y, dz * e2x - dx * e2z, dx * e2y - dy * e2x
                det = e1x * px + e1y * py + e1z * pz
                if abs(det) < 1e-300:
                    continue
                inv = 1.0 / det
                tx, ty, tz = X[0, i] - V[a], X[1, i] - V[a + 1], X[2, i] - V[a + 2]
                u = (tx * px + ty * py + tz * pz) * inv
                if u < 0 or u > 1:
                    continue
                qx, qy, qz = ty * e1z - tz * e1y, tz * e1x - tx * e1z, tx * e1y - ty * e1x
                v = (dx * qx + dy * qy + dz * qz) * inv
                if v < 0 or u + v > 1:
                    continue
                if (e2x * qx + e2y * qy + e2z * qz) * inv > 0:
                    c = not c
            votes += c
        out[i] = votes >= 2
    return out


def _encloses_a_probe(domain) -> bool:
    """Whether some point of a 9^dim lattice over the bounding box is inside, in chunks that stop at the first one
    (each inside test is a pass over every primitive)."""
    probe = _interior_probe(domain)
    # middle points first: most domains contain their bounding box's centre
    order = np.argsort(np.sum((probe - probe.mean(axis=1, keepdims=True)) ** 2, axis=0), kind="stable")
    for chunk in np.array_split(order, max(1, order.size // 32)):
        if np.any(domain.contains(probe[:, chunk])):
            return True
    return False


def _interior_probe(domain):
    lo, hi = domain.bounds
    g = np.linspace(0.05, 0.95, 9)
    axes = np.meshgrid(*[lo[i] + g * (hi[i] - lo[i]) for i in range(domain.dim)], indexing="ij")
    return np.stack([a.ravel() for a in axes])


def boundary_of_dolfinx_mesh(mesh, **options) -> MeshDomain:
    """The exterior facets of a DOLFINx mesh (0.5+) as a MeshDomain (segments in 2D, triangles in 3D); ``options``
    go to MeshDomain (grid_nodes, near_cells)."""
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
    return MeshDomain(x[used], cells.reshape(geo.shape), **options)
