"""The compiled Walk-on-Spheres kernel (numba): random streams, domain distances and sources, all in one loop.

Random numbers. Every walk has its own counter-based stream: its key is a hash of ``(seed, global walk number)``
and the ``j``-th 64-bit word it draws at jump ``k`` is ``mix64(key + (SLOTS k + j + 1) * GAMMA)``, the SplitMix64
output function (Steele, Lea, Flood 2014) applied to the walk's position in its own sequence. A draw depends on
nothing but the seed, the walk and the jump, so results do not depend on how walks are grouped in blocks, lanes or
MPI ranks, and the compiled loop and the Python-driven one (for domains given as Python callables) draw the same
numbers. Each word gives two 32-bit uniforms.

Domains are compiled to a small stack program (``ops``, one row per operation: code, parameter offset, per-instance
stride) evaluated over a set of lanes: each operation is one branch-free loop over the lanes, which the compiler
vectorises. The program computes ``d = -sdf`` (positive inside) of balls, boxes, star shapes (closed-form bound
plus a grid of exact distances), boundary meshes (grid bound and per-node plane rows, exact point-segment /
point-triangle distances from per-node candidate lists below epsilon; see mesh_domain), and their unions (max),
intersections (min) and differences (``min(d_a, -d_b)``).

The walk loop keeps ``LANES`` walks in flight: a finished walk's lane is refilled at once with the next walk of the
block, so the vector loops stay full; once no walks are left the live lanes are compacted.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

# Only flags that cannot change a result: no reassociation or contraction (FMA), so the compiled loop is
# reproducible across CPUs and bit-identical to the Python-driven path; no nnan/ninf (NaN checks must work).
FASTMATH = {"nsz", "arcp"}

GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_KEY = np.uint64(0xD1B54A32D192ED03)
_S27, _S30, _S31, _S32 = np.uint64(27), np.uint64(30), np.uint64(31), np.uint64(32)
_LOW = np.uint64(0xFFFFFFFF)
_INV32 = 2.0 ** -32
SLOTS = 4  # 64-bit words reserved per jump: direction (1), Green's-function sample (up to 3)
LANES = 256

# operation codes of the domain program
OP_BALL, OP_BOX, OP_STAR, OP_MESH, OP_UNION, OP_INTERSECT, OP_DIFF = 1, 2, 3, 4, 10, 11, 12
# source kinds
SRC_NONE, SRC_CONST, SRC_GAUSS = 0, 1, 2
# star row layout (see domains.StarShaped.program)
STAR_ROW = 14


@njit(cache=True, error_model="numpy")
def mix64(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, error_model="numpy")
def seed_hash(seed):
    return mix64(seed * GAMMA + _KEY)


@njit(cache=True, error_model="numpy")
def walk_key(seed, walk):
    return mix64(seed_hash(seed) ^ (np.uint64(walk) * _KEY))


@njit(cache=True, error_model="numpy")
def uniforms(key, jump, slot):
    """Two uniforms in [0, 1) from word ``slot`` of jump ``jump`` of the walk with ``key``."""
    h = mix64(key + np.uint64(SLOTS * jump + slot + 1) * GAMMA)
    return np.int64(h >> _S32) * _INV32, np.int64(h & _LOW) * _INV32


@njit(cache=True, error_model="numpy")
def circle(u):
    """A point on the unit circle at angle 2 pi u, without libm calls (vectorisable): quadrant by the two top bits,
    then Taylor polynomials on [-pi/4, pi/4) (error below 1e-11)."""
    t = u * 4.0
    q = np.int64(t)
    a = (t - q - 0.5) * (math.pi / 2)
    a2 = a * a
    s = a * (1.0 + a2 * (-1.0 / 6 + a2 * (1.0 / 120 + a2 * (-1.0 / 5040 + a2 * (1.0 / 362880
                                                                            + a2 * (-1.0 / 39916800))))))
    c = 1.0 + a2 * (-0.5 + a2 * (1.0 / 24 + a2 * (-1.0 / 720 + a2 * (1.0 / 40320 + a2 * (-1.0 / 3628800
                                                                                        + a2 / 479001600)))))
    odd = (q & 1) == 1
    cx = -s if odd else c
    cy = c if odd else s
    sign = 1.0 - 2.0 * (q >> 1)
    return cx * sign, cy * sign


@njit(cache=True, error_model="numpy")
def direction(key, jump, slot, dim):
    """A uniform unit vector (2D: one uniform; 3D: z uniform in [-1, 1], angle uniform)."""
    u, v = uniforms(key, jump, slot)
    cx, cy = circle(u)
    if dim == 2:
        return cx, cy, 0.0
    z = 2.0 * v - 1.0
    s = math.sqrt(max(1.0 - z * z, 0.0))
    return s * cx, s * cy, z


@njit(cache=True, error_model="numpy")
def green_sample(key, jump, dim):
    """Offset (as a fraction of the radius) of a sample of the ball's Green's function: 2D radius fraction
    sqrt(u1 u2) (density 4 s log(1/s)), 3D the median of three uniforms (Beta(2,2)); uniform direction."""
    u1, u2 = uniforms(key, jump, 1)
    if dim == 2:
        rho = math.sqrt(u1 * u2)
        cx, cy = circle(uniforms(key, jump, 2)[0])
        return rho * cx, rho * cy, 0.0
    u3, u4 = uniforms(key, jump, 2)
    rho = max(min(u1, u2), min(max(u1, u2), u3))
    u5, _ = uniforms(key, jump, 3)
    cx, cy = circle(u4)
    z = 2.0 * u5 - 1.0
    s = math.sqrt(max(1.0 - z * z, 0.0))
    return rho * s * cx, rho * s * cy, rho * z


@njit(cache=True, error_model="numpy")
def source_value(kind, sfp, row, y0, y1, y2, dim):
    if kind == SRC_CONST:
        return sfp[row]
    # Gaussian sum: row = [1 / (2 sigma^2), count, then (A, centre) per Gaussian]
    inv2s2 = sfp[row]
    n = np.int64(sfp[row + 1])
    f = 0.0
    k = row + 2
    for _ in range(n):
        d0 = y0 - sfp[k + 1]
        d1 = y1 - sfp[k + 2]
        q = d0 * d0 + d1 * d1
        if dim == 3:
            d2 = y2 - sfp[k + 3]
            q += d2 * d2
        f += sfp[k] * math.exp(-q * inv2s2)
        k += 1 + dim
    return f


# -- domain program -----------------------------------------------------------------------------------------------
@njit(inline="always", cache=True, error_model="numpy")
def _grid_bound(fp, g, x, y):
    """max(0, lower bound) from a 2D node grid: d(node) - |x - node| (the distance is 1-Lipschitz)."""
    x0, y0, inv_h, h = fp[g], fp[g + 1], fp[g + 2], fp[g + 3]
    nx, ny, off = np.int64(fp[g + 4]), np.int64(fp[g + 5]), np.int64(fp[g + 6])
    i = min(max(np.int64(math.floor((x - x0) * inv_h + 0.5)), 0), nx - 1)
    j = min(max(np.int64(math.floor((y - y0) * inv_h + 0.5)), 0), ny - 1)
    dx = x - (x0 + i * h)
    dy = y - (y0 + j * h)
    return fp[off + i * ny + j] - math.sqrt(dx * dx + dy * dy)


@njit(inline="always", cache=True, error_model="numpy")
def star_distance(fp, o, x, y):
    """Signed inside distance bound of the star r < R(t) (see domains.StarShaped) in closed form, no trigonometric
    calls: the angle's multiples come from x / r, y / r by the double-angle formulas. Branch-free (vectorises)."""
    c1, c2, sc, rmin, d1max, d2max, lip_out = fp[o], fp[o + 1], fp[o + 2], fp[o + 3], fp[o + 4], fp[o + 5], fp[o + 6]
    r = math.sqrt(x * x + y * y)
    inv = 1.0 / max(r, 1e-300)
    c = x * inv if r > 0 else 1.0
    s = y * inv
    c2a, s2a = c * c - s * s, 2.0 * c * s
    c4, s4 = c2a * c2a - s2a * s2a, 2.0 * c2a * s2a
    c8, s8 = c4 * c4 - s4 * s4, 2.0 * c4 * s4
    R = sc * (1.0 + c1 * c4 + c2 * c8)
    dR = abs(sc * (4.0 * c1 * s4 + 8.0 * c2 * s8))
    phi = R - r
    aphi = abs(phi)
    win = aphi * inv * (math.pi / 2)
    a = min(r, rmin)
    rho2 = a * a - aphi * aphi * 0.25
    dRwin = min(dR + win * d2max, d1max)
    lip = math.sqrt(1.0 + dRwin * dRwin / max(rho2, 1e-30))
    b = aphi / lip if rho2 > 0 else 0.0
    b = max(b, rmin - r)
    return b if phi >= 0 else -aphi / lip_out


@njit(inline="always", cache=True, error_model="numpy")
def star_grid(fp, o, x, y, d):
    """Inside (d >= 0), the larger of d and the star's grid bound (when it has a grid: offset o + 13 >= 0)."""
    if fp[o + 13] < 0 or d < 0:
        return d
    return max(d, _grid_bound(fp, o + 7, x, y))


@njit(inline="always", cache=True, error_model="numpy")
def _seg_dist2(px, py, ax, ay, bx, by):
    ex, ey = bx - ax, by - ay
    wx, wy = px - ax, py - ay
    ee = ex * ex + ey * ey
    t = (wx * ex + wy * ey) / ee if ee > 0 else 0.0
    t = min(max(t, 0.0), 1.0)
    dx, dy = wx - t * ex, wy - t * ey
    return dx * dx + dy * dy, ax + t * ex, ay + t * ey


@njit(inline="always", cache=True, error_model="numpy")
def _tri_closest(px, py, pz, ax, ay, az, bx, by, bz, cx, cy, cz):
    """Closest point of triangle abc to p (Ericson, Real-Time Collision Detection, 5.1.5)."""
    abx, aby, abz = bx - ax, by - ay, bz - az
    acx, acy, acz = cx - ax, cy - ay, cz - az
    apx, apy, apz = px - ax, py - ay, pz - az
    d1 = abx * apx + aby * apy + abz * apz
    d2 = acx * apx + acy * apy + acz * apz
    if d1 <= 0 and d2 <= 0:
        return ax, ay, az
    bpx, bpy, bpz = px - bx, py - by, pz - bz
    d3 = abx * bpx + aby * bpy + abz * bpz
    d4 = acx * bpx + acy * bpy + acz * bpz
    if d3 >= 0 and d4 <= d3:
        return bx, by, bz
    vc = d1 * d4 - d3 * d2
    if vc <= 0 and d1 >= 0 and d3 <= 0:
        v = d1 / (d1 - d3)
        return ax + v * abx, ay + v * aby, az + v * abz
    cpx, cpy, cpz = px - cx, py - cy, pz - cz
    d5 = abx * cpx + aby * cpy + abz * cpz
    d6 = acx * cpx + acy * cpy + acz * cpz
    if d6 >= 0 and d5 <= d6:
        return cx, cy, cz
    vb = d5 * d2 - d1 * d6
    if vb <= 0 and d2 >= 0 and d6 <= 0:
        w = d2 / (d2 - d6)
        return ax + w * acx, ay + w * acy, az + w * acz
    va = d3 * d6 - d5 * d4
    if va <= 0 and (d4 - d3) >= 0 and (d5 - d6) >= 0:
        w = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        return bx + w * (cx - bx), by + w * (cy - by), bz + w * (cz - bz)
    den = 1.0 / (va + vb + vc)
    v = vb * den
    w = vc * den
    return ax + abx * v + acx * w, ay + aby * v + acy * w, az + abz * v + acz * w


# mesh parameter row (offsets from the operation's parameter offset; written by mesh_domain.MeshDomain.emit):
# grid origin (3), spacing, 1 / spacing, shape (3), then offsets into fp of the node pairs (per grid node: its exact
# distance and the offset of its plane block, -1 for a node far from the boundary: one cache line per query), the
# plane blocks (MESH_PLANES rows (n, c'): the bound is min over rows of n.x - c'), the primitive table; the number
# of primitives; the offsets in ip of the candidate lists' CSR starts (per node) and entries. Offsets are stored as
# floats (exact below 2^53).
M_H, M_INVH, M_SHAPE, M_NODES, M_PBLOCKS, M_PRIMS, M_NPRIMS, M_STARTS, M_LIST = 3, 4, 5, 8, 9, 10, 11, 12, 13
MESH_ROW = 14
MESH_PLANES = (0, 0, 2, 3)  # plane rows per near node, by dimension
# primitive table rows: 2D segment (a, e = b - a, 1 / |e|^2, unit normal n); 3D triangle (a, e0 = b - a, e1 = c - a,
# unit normal n, e0.e0, e0.e1, e1.e1, 1 / (e0.e0 e1.e1 - (e0.e1)^2) (0 when degenerate), 1 / |e0|^2, 1 / |e1|^2,
# 1 / |e1 - e0|^2). Degenerate primitives have n = 0.
PRIM_WIDTH2, PRIM_WIDTH3 = 7, 19


@njit(inline="always", cache=True, error_model="numpy")
def _plane_offset(fp, row, dim, x, y, z):
    """Signed distance from (x, y, z) to the primitive's plane (line in 2D): a lower bound on the distance to it."""
    if dim == 2:
        return (x - fp[row]) * fp[row + 5] + (y - fp[row + 1]) * fp[row + 6]
    return (x - fp[row]) * fp[row + 9] + (y - fp[row + 1]) * fp[row + 10] + (z - fp[row + 2]) * fp[row + 11]


@njit(inline="always", cache=True, error_model="numpy")
def _prim_dist2(fp, row, dim, x, y, z):
    """Squared distance from (x, y, z) to the primitive whose table row starts at ``row``, without branches: the
    triangle's is the plane's where the projection falls inside it, else the nearest of its three edges'."""
    wx, wy = x - fp[row], y - fp[row + 1]
    if dim == 2:
        ex, ey = fp[row + 2], fp[row + 3]
        t = min(max((wx * ex + wy * ey) * fp[row + 4], 0.0), 1.0)
        dx, dy = wx - t * ex, wy - t * ey
        return dx * dx + dy * dy
    wz = z - fp[row + 2]
    ax, ay, az, bx, by, bz = fp[row + 3], fp[row + 4], fp[row + 5], fp[row + 6], fp[row + 7], fp[row + 8]
    b0 = wx * ax + wy * ay + wz * az
    b1 = wx * bx + wy * by + wz * bz
    s = wx * fp[row + 9] + wy * fp[row + 10] + wz * fp[row + 11]
    d00, d01, d11, inv_den = fp[row + 12], fp[row + 13], fp[row + 14], fp[row + 15]
    v = (d11 * b0 - d01 * b1) * inv_den
    u = (d00 * b1 - d01 * b0) * inv_den
    inside = (v >= 0.0) & (u >= 0.0) & (u + v <= 1.0) & (inv_den > 0.0)
    t0 = min(max(b0 * fp[row + 16], 0.0), 1.0)
    q0x, q0y, q0z = wx - t0 * ax, wy - t0 * ay, wz - t0 * az
    t1 = min(max(b1 * fp[row + 17], 0.0), 1.0)
    q1x, q1y, q1z = wx - t1 * bx, wy - t1 * by, wz - t1 * bz
    cx, cy, cz = bx - ax, by - ay, bz - az
    px, py, pz = wx - ax, wy - ay, wz - az
    t2 = min(max((px * cx + py * cy + pz * cz) * fp[row + 18], 0.0), 1.0)
    q2x, q2y, q2z = px - t2 * cx, py - t2 * cy, pz - t2 * cz
    edge = min(q0x * q0x + q0y * q0y + q0z * q0z, q1x * q1x + q1y * q1y + q1z * q1z,
               q2x * q2x + q2y * q2y + q2z * q2z)
    return s * s if inside else edge


@njit(cache=True, error_model="numpy")
def _prim_closest(fp, row, dim, x, y, z):
    """The closest point of one primitive (table row at ``row``)."""
    ax, ay = fp[row], fp[row + 1]
    if dim == 2:
        ex, ey = fp[row + 2], fp[row + 3]
        t = min(max(((x - ax) * ex + (y - ay) * ey) * fp[row + 4], 0.0), 1.0)
        return ax + t * ex, ay + t * ey, 0.0
    az = fp[row + 2]
    return _tri_closest(x, y, z, ax, ay, az, ax + fp[row + 3], ay + fp[row + 4], az + fp[row + 5],
                        ax + fp[row + 6], ay + fp[row + 7], az + fp[row + 8])


@njit(inline="always", cache=True, error_model="numpy")
def _mesh_node(fp, o, dim, x, y, z):
    """The grid node nearest to (x, y, z), or -1 outside the grid. Branch-free (an early return here made each call
    cost about 40 cycles instead of a few)."""
    inv_h = fp[o + M_INVH]
    n0, n1, n2 = np.int64(fp[o + M_SHAPE]), np.int64(fp[o + M_SHAPE + 1]), np.int64(fp[o + M_SHAPE + 2])
    i = np.int64(math.floor((x - fp[o]) * inv_h + 0.5))
    j = np.int64(math.floor((y - fp[o + 1]) * inv_h + 0.5))
    k = np.int64(math.floor((z - fp[o + 2]) * inv_h + 0.5)) if dim == 3 else 0
    ok = (i >= 0) & (i < n0) & (j >= 0) & (j < n1) & (k >= 0) & (k < n2)
    return (i * n1 + j) * n2 + k if ok else -1


@njit(inline="always", cache=True, error_model="numpy")
def mesh_nearest(fp, ip, o, dim, x, y, z):
    """Exact squared distance to a mesh and the nearest primitive: over the nearest grid node's candidate list (every
    primitive that can be nearest to a point of the node's cell, nearest to the node first), or over all primitives
    when the node has no list or the point lies outside the grid. A candidate is skipped when its plane alone is
    already no nearer than the best so far."""
    node = _mesh_node(fp, o, dim, x, y, z)
    s_off = np.int64(fp[o + M_STARTS]) + max(node, 0)
    a, b = ip[s_off], ip[s_off + 1]
    listed = (node >= 0) & (b > a)
    count = b - a if listed else np.int64(fp[o + M_NPRIMS])
    prims, width = np.int64(fp[o + M_PRIMS]), PRIM_WIDTH2 if dim == 2 else PRIM_WIDTH3
    l_off = np.int64(fp[o + M_LIST]) + a
    best, pbest = np.inf, 0
    for m in range(count):
        p = ip[l_off + m] if listed else m
        row = prims + width * p
        # the plane is no farther than the primitive: most candidates (coplanar neighbours, other faces) stop here
        s = _plane_offset(fp, row, dim, x, y, z)
        if s * s >= best:
            continue
        d2 = _prim_dist2(fp, row, dim, x, y, z)
        if d2 < best:
            best, pbest = d2, p
    return best, pbest


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def mesh_closest(fp, ip, o, dim, x, y, z):
    """Exact distance and closest boundary point of a mesh domain. Returns (distance, px, py, pz)."""
    d2, p = mesh_nearest(fp, ip, o, dim, x, y, z)
    qx, qy, qz = _prim_closest(fp, np.int64(fp[o + M_PRIMS]) + (PRIM_WIDTH2 if dim == 2 else PRIM_WIDTH3) * p,
                               dim, x, y, z)
    return math.sqrt(d2), qx, qy, qz


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def mesh_closest_points(fp, ip, o, X):
    """Exact distances (n,) and closest boundary points (dim, n) of a mesh domain at the columns of X."""
    dim, n = X.shape
    d = np.empty(n)
    P = np.empty((dim, n))
    for i in range(n):
        d[i], px, py, pz = mesh_closest(fp, ip, o, dim, X[0, i], X[1, i], X[2, i] if dim == 3 else 0.0)
        P[0, i], P[1, i] = px, py
        if dim == 3:
            P[2, i] = pz
    return d, P


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _mesh_bound_pass(fp, o, dim, X, d, i0, i1):
    """A lower bound on the distance to a mesh at columns i0..i1 of X: the grid bound ``d(node) - |x - node|`` (the
    distance is 1-Lipschitz) and, at a node near the boundary, the larger of it and the node's plane bound
    ``min_j (n_j.x - c'_j)``. Each near node's plane rows were chosen so that every candidate primitive k satisfies
    dist_k(x) >= n_k.x - c_k >= n_j.x - c'_j for one row j and every x of the node's cell (c'_j = c_j + the largest
    (n_j - n_k).x - (c_j - c_k) over the cell's corners): the bound is exact wherever the nearby boundary is flat or
    convex with one row per face that can be nearest (mesh_domain._plane_rows).

    Written for the scalar loop it is: parameters read once, unsigned indices (numba checks every signed index for
    wraparound, a branch per load), every load unconditional (block 0 stands in for far nodes) so that the result
    is a select, not a branch."""
    h, inv_h = fp[o + M_H], fp[o + M_INVH]
    ox, oy, oz = fp[o], fp[o + 1], fp[o + 2]
    n0, n1, n2 = np.int64(fp[o + M_SHAPE]), np.int64(fp[o + M_SHAPE + 1]), np.int64(fp[o + M_SHAPE + 2])
    nodes, blocks = np.uint64(fp[o + M_NODES]), np.uint64(fp[o + M_PBLOCKS])
    u1, u2, u3, u4, u5, u6 = np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4), np.uint64(5), np.uint64(6)
    u7, u8, u9, u10, u11 = np.uint64(7), np.uint64(8), np.uint64(9), np.uint64(10), np.uint64(11)
    u12, u13, u15 = np.uint64(12), np.uint64(13), np.uint64(15)
    for i in range(i0, i1):
        x, y = X[0, i], X[1, i]
        z = X[2, i] if dim == 3 else 0.0
        fi = np.int64(math.floor((x - ox) * inv_h + 0.5))
        fj = np.int64(math.floor((y - oy) * inv_h + 0.5))
        fk = np.int64(math.floor((z - oz) * inv_h + 0.5)) if dim == 3 else 0
        ok = (fi >= 0) & (fi < n0) & (fj >= 0) & (fj < n1) & (fk >= 0) & (fk < n2)
        ci, cj, ck = min(max(fi, 0), n0 - 1), min(max(fj, 0), n1 - 1), min(max(fk, 0), n2 - 1)
        dx, dy, dz = x - (ox + ci * h), y - (oy + cj * h), (z - (oz + ck * h)) if dim == 3 else 0.0
        rec = nodes + u2 * np.uint64((ci * n1 + cj) * n2 + ck)
        gb = fp[rec] - math.sqrt(dx * dx + dy * dy + dz * dz)
        off = fp[rec + u1]
        near = off >= 0.0
        pb = blocks + np.uint64(max(off, 0.0))
        if dim == 2:
            plane = min(fp[pb] * x + fp[pb + u1] * y - fp[pb + u3], fp[pb + u4] * x + fp[pb + u5] * y - fp[pb + u7])
        else:
            plane = min(fp[pb] * x + fp[pb + u1] * y + fp[pb + u2] * z - fp[pb + u3],
                        fp[pb + u4] * x + fp[pb + u5] * y + fp[pb + u6] * z - fp[pb + u7],
                        fp[pb + u8] * x + fp[pb + u9] * y + fp[pb + u10] * z - fp[pb + u11])
        d[i] = max(gb, plane if near & ok else -np.inf)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _mesh_exact_pass(fp, ip, o, dim, X, d, i0, i1, exact_below):
    """The exact distance where the bound is below ``exact_below`` (the walk's last step, mostly). A function of its
    own, so the walk loop's code stays small (compile time) while the query inside is inlined."""
    for i in range(i0, i1):
        if d[i] < exact_below:
            d[i] = math.sqrt(mesh_nearest(fp, ip, o, dim, X[0, i], X[1, i], X[2, i] if dim == 3 else 0.0)[0])


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _mesh_walk_query(fp, ip, o, dim, X, d, closest, i0, i1, eps):
    """The walk's query on a mesh domain: eval_program's (the bound, exact below eps), and for every lane whose exact
    distance is below eps (it stops) its closest boundary point into ``closest``, from the same search."""
    _mesh_bound_pass(fp, o, dim, X, d, i0, i1)
    prims, width = np.int64(fp[o + M_PRIMS]), PRIM_WIDTH2 if dim == 2 else PRIM_WIDTH3
    for i in range(i0, i1):
        if d[i] < eps:
            x, y, z = X[0, i], X[1, i], X[2, i] if dim == 3 else 0.0
            d2, p = mesh_nearest(fp, ip, o, dim, x, y, z)
            d[i] = math.sqrt(d2)
            if d[i] < eps:
                closest[0, i], closest[1, i], qz = _prim_closest(fp, prims + width * p, dim, x, y, z)
                if dim == 3:
                    closest[2, i] = qz


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def eval_program(ops, fp, ip, dim, X, aux, out, stack, i0, i1, exact_below):
    """d = -sdf at columns i0..i1 of X (dim, lanes) into ``out``; ``aux`` (lanes,) selects per-instance rows.

    Mesh domains return their exact distance wherever it is below ``exact_below`` and a lower bound elsewhere (the
    walk passes epsilon, so its stopping test is exact); the other operations ignore it."""
    sp = 0
    for k in range(ops.shape[0]):
        op, o, stride = ops[k, 0], ops[k, 1], ops[k, 2]
        if op >= OP_UNION:
            a, b = stack[sp - 2], stack[sp - 1]
            if op == OP_UNION:
                for i in range(i0, i1):
                    a[i] = max(a[i], b[i])
            elif op == OP_INTERSECT:
                for i in range(i0, i1):
                    a[i] = min(a[i], b[i])
            else:
                for i in range(i0, i1):
                    a[i] = min(a[i], -b[i])
            sp -= 1
            continue
        d = stack[sp]
        sp += 1
        if op == OP_BALL:
            if dim == 2:
                cx, cy, R = fp[o], fp[o + 1], fp[o + 2]
                for i in range(i0, i1):
                    dx, dy = X[0, i] - cx, X[1, i] - cy
                    d[i] = R - math.sqrt(dx * dx + dy * dy)
            else:
                cx, cy, cz, R = fp[o], fp[o + 1], fp[o + 2], fp[o + 3]
                for i in range(i0, i1):
                    dx, dy, dz = X[0, i] - cx, X[1, i] - cy, X[2, i] - cz
                    d[i] = R - math.sqrt(dx * dx + dy * dy + dz * dz)
        elif op == OP_BOX:
            for i in range(i0, i1):
                qmax, out2 = -np.inf, 0.0
                for a in range(dim):
                    q = abs(X[a, i] - fp[o + a]) - fp[o + dim + a]
                    qmax = max(qmax, q)
                    qp = max(q, 0.0)
                    out2 += qp * qp
                d[i] = -(min(qmax, 0.0) + math.sqrt(out2))
        elif op == OP_STAR:  # closed form, then the grid (two loops: each vectorises)
            if stride == 0:
                for i in range(i0, i1):
                    d[i] = star_distance(fp, o, X[0, i], X[1, i])
                if fp[o + 13] >= 0:
                    for i in range(i0, i1):
                        d[i] = star_grid(fp, o, X[0, i], X[1, i], d[i])
            else:
                for i in range(i0, i1):
                    d[i] = star_distance(fp, o + aux[i] * stride, X[0, i], X[1, i])
                for i in range(i0, i1):
                    d[i] = star_grid(fp, o + aux[i] * stride, X[0, i], X[1, i], d[i])
        elif op == OP_MESH:
            _mesh_bound_pass(fp, o, dim, X, d, i0, i1)
            _mesh_exact_pass(fp, ip, o, dim, X, d, i0, i1, exact_below)
    res = stack[0]
    for i in range(i0, i1):
        out[i] = res[i]


# -- the walk loop ------------------------------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def _load(lane, w, pt, P, aux_pts, lx, laux, lkey, ljump, lacc, lwalk, seed_hash, walk0, dim):
    for a in range(dim):
        lx[a, lane] = P[a, pt]
    laux[lane] = aux_pts[pt] if aux_pts.size else 0
    lkey[lane] = mix64(seed_hash ^ (np.uint64(walk0 + w) * _KEY))
    ljump[lane] = 0
    lacc[lane] = 0.0
    lwalk[lane] = w


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _flush_exits(ops, fp, ip, dim, ex, exd, exaux, exw, count, Xh, val, stack, exits, h, eps):
    """One Newton step onto the boundary for the buffered exits (see project), written to their walks' columns. A
    mesh domain's exits are exact closest points instead: already found by the query that stopped the walk
    (``exd < eps``), or queried here (walks stopped by max_steps)."""
    if ops.shape[0] == 1 and ops[0, 0] == OP_MESH:
        for i in range(count):
            w = exw[i]
            if exd[i] < eps:
                for a in range(dim):
                    exits[a, w] = ex[a, i]
            else:
                _, px, py, pz = mesh_closest(fp, ip, ops[0, 1], dim, ex[0, i], ex[1, i],
                                             ex[2, i] if dim == 3 else 0.0)
                exits[0, w], exits[1, w] = px, py
                if dim == 3:
                    exits[2, w] = pz
        return
    for a in range(dim):
        for i in range(count):
            Xh[a, i] = ex[a, i]
    g2 = np.zeros(count)
    grad = np.empty((dim, count))
    for a in range(dim):
        for i in range(count):
            Xh[a, i] = ex[a, i] + h
        eval_program(ops, fp, ip, dim, Xh, exaux, val, stack, 0, count, np.inf)
        for i in range(count):
            Xh[a, i] = ex[a, i]
            grad[a, i] = (val[i] - exd[i]) / h
            g2[i] += grad[a, i] * grad[a, i]
    for i in range(count):
        w = exw[i]
        step = exd[i] / g2[i] if g2[i] > 0.25 else 0.0
        for a in range(dim):
            exits[a, w] = ex[a, i] - step * grad[a, i]


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def walk_block(P, aux_pts, per_point, walk0, n, seed, eps, max_steps, ops, fp, ip, depth, src_kind, sfp, src_row,
               src_stride, lanes):
    """Walks ``walk0 .. walk0 + n - 1`` (global numbers); walk g starts at column ``g // per_point`` of the query
    points P (dim, m), with instance number ``aux_pts[g // per_point]`` (or 0 when aux_pts is empty).

    Returns exit points projected onto the boundary by one Newton step (see project) (dim, n), the distances at
    the exits before projection (n,), source sums (n,), overrun flags (n,) and the number of distance queries.
    """
    dim = P.shape[0]
    W = min(lanes, n)
    exits = np.empty((dim, n))
    dexit = np.empty(n)
    acc = np.zeros(n)
    over = np.zeros(n, dtype=np.bool_)
    lx = np.empty((dim, W))
    laux = np.zeros(W, dtype=np.int64)
    lkey = np.zeros(W, dtype=np.uint64)
    ljump = np.zeros(W, dtype=np.int64)
    lacc = np.zeros(W)
    lwalk = np.full(W, -1, dtype=np.int64)
    lr = np.zeros(W)
    stack = np.empty((max(depth, 1), W))
    # finished walks wait in a buffer and are projected onto the boundary a lane-set at a time (vectorised)
    ex, exd, exaux, exw = np.empty((dim, W)), np.empty(W), np.zeros(W, dtype=np.int64), np.zeros(W, dtype=np.int64)
    Xh, val = np.empty((dim, W)), np.empty(W)
    # a mesh domain's walk queries also return the closest boundary point of every lane that stops (lcp)
    mesh_only = ops.shape[0] == 1 and ops[0, 0] == OP_MESH
    lcp = np.empty((dim, W if mesh_only else 0))
    nex = 0
    green = 0.25 if dim == 2 else 1.0 / 6.0
    sh = seed_hash(seed)
    # the query point of the next walk to load, advanced incrementally (no division per walk)
    pt, left = walk0 // per_point, per_point - walk0 % per_point
    for lane in range(W):
        _load(lane, lane, pt, P, aux_pts, lx, laux, lkey, ljump, lacc, lwalk, sh, walk0, dim)
        left -= 1
        if left == 0:
            pt, left = pt + 1, per_point
    nxt = W
    active = W
    steps = 0
    if mesh_only:
        _mesh_walk_query(fp, ip, ops[0, 1], dim, lx, lr, lcp, 0, active, eps)
    else:
        eval_program(ops, fp, ip, dim, lx, laux, lr, stack, 0, active, eps)
    nlive = W
    done_idx = np.empty(W, dtype=np.int64)
    while active > 0:
        # every live lane made one distance query; find the finished ones without a branch per lane
        steps += nlive
        nd = 0
        for i in range(active):
            done_idx[nd] = i
            nd += (lwalk[i] >= 0) & ((lr[i] < eps) | (ljump[i] >= max_steps))
        # finished walks leave; their lanes take the next walks, which stay put this round (r = 0) and have their
        # first distance queried with everybody else's after the jump
        for k in range(nd):
            i = done_idx[k]
            w = lwalk[i]
            if nex == W:
                _flush_exits(ops, fp, ip, dim, ex, exd, exaux, exw, nex, Xh, val, stack, exits, 1e-7, eps)
                nex = 0
            stopped_here = mesh_only and lr[i] < eps
            for a in range(dim):
                ex[a, nex] = lcp[a, i] if stopped_here else lx[a, i]
            exd[nex], exaux[nex], exw[nex] = lr[i], laux[i], w
            nex += 1
            over[w] = lr[i] >= eps
            dexit[w] = lr[i]
            acc[w] = lacc[i]
            lr[i] = 0.0
            if nxt < n:
                _load(i, nxt, pt, P, aux_pts, lx, laux, lkey, ljump, lacc, lwalk, sh, walk0, dim)
                nxt += 1
                left -= 1
                if left == 0:
                    pt, left = pt + 1, per_point
            else:
                lwalk[i] = -1
                nlive -= 1
        live = nlive
        if live == 0:
            break
        if nxt >= n and live < active:  # no walks left to refill: compact the live lanes to the front
            j = 0
            for i in range(active):
                if lwalk[i] >= 0:
                    if j != i:
                        for a in range(dim):
                            lx[a, j] = lx[a, i]
                        laux[j], lkey[j], ljump[j], lacc[j], lwalk[j], lr[j] = (laux[i], lkey[i], ljump[i], lacc[i],
                                                                                lwalk[i], lr[i])
                    j += 1
            active = j
        # one jump for every lane (branch-free: fresh lanes have r = 0 and do not count it)
        if src_kind != SRC_NONE:
            for i in range(active):
                r = lr[i]
                gx, gy, gz = green_sample(lkey[i], ljump[i], dim)
                row = src_row + laux[i] * src_stride
                f = source_value(src_kind, sfp, row, lx[0, i] + r * gx, lx[1, i] + r * gy,
                                 (lx[2, i] + r * gz) if dim == 3 else 0.0, dim)
                lacc[i] += green * r * r * f
        if dim == 2:
            for i in range(active):
                r = lr[i]
                dx, dy, _ = direction(lkey[i], ljump[i], 0, 2)
                lx[0, i] += r * dx
                lx[1, i] += r * dy
                ljump[i] += r > 0
        else:
            for i in range(active):
                r = lr[i]
                dx, dy, dz = direction(lkey[i], ljump[i], 0, 3)
                lx[0, i] += r * dx
                lx[1, i] += r * dy
                lx[2, i] += r * dz
                ljump[i] += r > 0
        if mesh_only:
            _mesh_walk_query(fp, ip, ops[0, 1], dim, lx, lr, lcp, 0, active, eps)
        else:
            eval_program(ops, fp, ip, dim, lx, laux, lr, stack, 0, active, eps)
    _flush_exits(ops, fp, ip, dim, ex, exd, exaux, exw, nex, Xh, val, stack, exits, 1e-7, eps)
    return exits, dexit, acc, over, steps


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def project(ops, fp, ip, depth, X, aux, d, h=1e-7):
    """Newton step onto the zero set of d = -sdf from points X (dim, n) near it, d their values:
    ``x - d grad d / |grad d|^2`` (forward differences). Exact for exact distances (balls, boxes, meshes, and
    their CSG away from kinks); within O(d^2) of the boundary for the star's bound. Points where the gradient
    vanishes (medial axis) stay put: they are within epsilon anyway."""
    dim, n = X.shape
    out = X.copy()
    if n == 0:
        return out
    stack = np.empty((max(depth, 1), n))
    grad = np.empty((dim, n))
    val = np.empty(n)
    Xh = X.copy()
    for a in range(dim):
        for i in range(n):
            Xh[a, i] = X[a, i] + h
        eval_program(ops, fp, ip, dim, Xh, aux, val, stack, 0, n, np.inf)
        for i in range(n):
            grad[a, i] = (val[i] - d[i]) / h
            Xh[a, i] = X[a, i]
    for i in range(n):
        g2 = 0.0
        for a in range(dim):
            g2 += grad[a, i] * grad[a, i]
        if g2 > 0.25:
            for a in range(dim):
                out[a, i] = X[a, i] - d[i] * grad[a, i] / g2
    return out


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def point_sums(vals, over, walk0, per_point, p0, m):
    """Sums of the walk values and their squares, and overrun counts, per query point p0 .. p0 + m - 1."""
    s1, s2, no = np.zeros(m), np.zeros(m), np.zeros(m, dtype=np.int64)
    for w in range(vals.size):
        k = (walk0 + w) // per_point - p0
        s1[k] += vals[w]
        s2[k] += vals[w] * vals[w]
        no[k] += over[w]
    return s1, s2, no


# -- pieces for walks driven from Python (domains given as Python callables) ---------------------------------------
@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def keys_for(seed, walks):
    out = np.empty(walks.size, dtype=np.uint64)
    s = np.uint64(seed)
    for i in range(walks.size):
        out[i] = walk_key(s, walks[i])
    return out


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def green_points(X, r, keys, jumps):
    """Green's-function sample points (dim, m) of one jump of every walk and their weights |B| G / f = c r^2."""
    dim, m = X.shape
    Y = np.empty((dim, m))
    wgt = np.empty(m)
    green = 0.25 if dim == 2 else 1.0 / 6.0
    for i in range(m):
        gx, gy, gz = green_sample(keys[i], jumps[i], dim)
        Y[0, i] = X[0, i] + r[i] * gx
        Y[1, i] = X[1, i] + r[i] * gy
        if dim == 3:
            Y[2, i] = X[2, i] + r[i] * gz
        wgt[i] = green * r[i] * r[i]
    return Y, wgt


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def jump(X, r, keys, jumps):
    """One jump of every walk (columns of X, in place), the same draws as walk_block."""
    dim, m = X.shape
    for i in range(m):
        dx, dy, dz = direction(keys[i], jumps[i], 0, dim)
        X[0, i] += r[i] * dx
        X[1, i] += r[i] * dy
        if dim == 3:
            X[2, i] += r[i] * dz
        jumps[i] += 1


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def source_values(kind, sfp, row, Y):
    """A kernel source at the columns of Y (dim, m)."""
    dim, m = Y.shape
    out = np.empty(m)
    for i in range(m):
        out[i] = source_value(kind, sfp, row, Y[0, i], Y[1, i], Y[2, i] if dim == 3 else 0.0, dim)
    return out
