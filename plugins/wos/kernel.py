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
plus a grid of exact distances), boundary meshes (grid bound, exact point-segment / point-triangle distances from
per-node candidate lists near the boundary), and their unions (max), intersections (min) and differences
(``min(d_a, -d_b)``).

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


@njit(inline="always", cache=True, fastmath=FASTMATH, error_model="numpy")
def mesh_closest(fp, ip, o, dim, x, y, z):
    """Exact closest boundary point of a mesh domain (parameter layout in mesh_domain.MeshDomain.emit): the
    candidate primitives of the nearest grid node, or all of them when that node has no list or the point lies
    outside the grid. Returns (distance, px, py, pz)."""
    h, inv_h = fp[o + 3], fp[o + 4]
    n0, n1, n2 = np.int64(fp[o + 5]), np.int64(fp[o + 6]), np.int64(fp[o + 7])
    v_off, c_off, s_off, l_off, n_prims = (np.int64(fp[o + 9]), np.int64(fp[o + 10]), np.int64(fp[o + 11]),
                                           np.int64(fp[o + 12]), np.int64(fp[o + 13]))
    i = np.int64(math.floor((x - fp[o]) * inv_h + 0.5))
    j = np.int64(math.floor((y - fp[o + 1]) * inv_h + 0.5))
    k = np.int64(math.floor((z - fp[o + 2]) * inv_h + 0.5)) if dim == 3 else 0
    inside = 0 <= i < n0 and 0 <= j < n1 and 0 <= k < n2
    a = b = 0
    dn = 0.0
    if inside:
        node = (i * n1 + j) * n2 + k
        a, b = ip[s_off + node], ip[s_off + node + 1]
        dx, dy, dz = x - (fp[o] + i * h), y - (fp[o + 1] + j * h), z - (fp[o + 2] + k * h) if dim == 3 else 0.0
        dn = math.sqrt(dx * dx + dy * dy + dz * dz)
    use_all = a == b
    count = n_prims if use_all else b - a
    ld_off = np.int64(fp[o + 15])
    best, bx, by, bz = np.inf, x, y, z
    for m in range(count):
        # lists are sorted by distance to the node: the rest are at least ldist - |x - node| away
        if not use_all and (fp[ld_off + a + m] - dn) ** 2 >= best and fp[ld_off + a + m] >= dn:
            break
        p = m if use_all else ip[l_off + a + m]
        if dim == 2:
            va, vb = ip[c_off + 2 * p], ip[c_off + 2 * p + 1]
            d2, qx, qy = _seg_dist2(x, y, fp[v_off + 2 * va], fp[v_off + 2 * va + 1], fp[v_off + 2 * vb],
                                    fp[v_off + 2 * vb + 1])
            if d2 < best:
                best, bx, by = d2, qx, qy
        else:
            va, vb, vc = ip[c_off + 3 * p], ip[c_off + 3 * p + 1], ip[c_off + 3 * p + 2]
            qx, qy, qz = _tri_closest(x, y, z, fp[v_off + 3 * va], fp[v_off + 3 * va + 1], fp[v_off + 3 * va + 2],
                                      fp[v_off + 3 * vb], fp[v_off + 3 * vb + 1], fp[v_off + 3 * vb + 2],
                                      fp[v_off + 3 * vc], fp[v_off + 3 * vc + 1], fp[v_off + 3 * vc + 2])
            d2 = (qx - x) ** 2 + (qy - y) ** 2 + (qz - z) ** 2
            if d2 < best:
                best, bx, by, bz = d2, qx, qy, qz
    return math.sqrt(best), bx, by, bz


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


@njit(inline="always", cache=True, error_model="numpy")
def _mesh_grid_bound(fp, o, dim, x, y, z):
    h, inv_h = fp[o + 3], fp[o + 4]
    n0, n1, n2 = np.int64(fp[o + 5]), np.int64(fp[o + 6]), np.int64(fp[o + 7])
    d_off = np.int64(fp[o + 8])
    i = min(max(np.int64(math.floor((x - fp[o]) * inv_h + 0.5)), 0), n0 - 1)
    j = min(max(np.int64(math.floor((y - fp[o + 1]) * inv_h + 0.5)), 0), n1 - 1)
    dx = x - (fp[o] + i * h)
    dy = y - (fp[o + 1] + j * h)
    q = dx * dx + dy * dy
    k = 0
    if dim == 3:
        k = min(max(np.int64(math.floor((z - fp[o + 2]) * inv_h + 0.5)), 0), n2 - 1)
        dz = z - (fp[o + 2] + k * h)
        q += dz * dz
    return fp[d_off + (i * n1 + j) * n2 + k] - math.sqrt(q)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _mesh_exact_pass(fp, ip, o, dim, X, d, i0, i1, near):
    """Exact distances where the grid bound is below ``near`` (scalar: candidate lists). A function of its own, so
    the walk loop's code stays small (compile time) while the query inside is inlined."""
    for i in range(i0, i1):
        if d[i] < near:
            d[i] = mesh_closest(fp, ip, o, dim, X[0, i], X[1, i], X[2, i] if dim == 3 else 0.0)[0]


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def eval_program(ops, fp, ip, dim, X, aux, out, stack, i0, i1):
    """d = -sdf at columns i0..i1 of X (dim, lanes) into ``out``; ``aux`` (lanes,) selects per-instance rows."""
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
            near = fp[o + 14]
            for i in range(i0, i1):
                d[i] = _mesh_grid_bound(fp, o, dim, X[0, i], X[1, i], X[2, i] if dim == 3 else 0.0)
            _mesh_exact_pass(fp, ip, o, dim, X, d, i0, i1, near)
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
def _flush_exits(ops, fp, ip, dim, ex, exd, exaux, exw, count, Xh, val, stack, exits, h):
    """One Newton step onto the boundary for the buffered exits (see project), written to their walks' columns."""
    for a in range(dim):
        for i in range(count):
            Xh[a, i] = ex[a, i]
    g2 = np.zeros(count)
    grad = np.empty((dim, count))
    for a in range(dim):
        for i in range(count):
            Xh[a, i] = ex[a, i] + h
        eval_program(ops, fp, ip, dim, Xh, exaux, val, stack, 0, count)
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
    eval_program(ops, fp, ip, dim, lx, laux, lr, stack, 0, active)
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
                _flush_exits(ops, fp, ip, dim, ex, exd, exaux, exw, nex, Xh, val, stack, exits, 1e-7)
                nex = 0
            for a in range(dim):
                ex[a, nex] = lx[a, i]
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
        eval_program(ops, fp, ip, dim, lx, laux, lr, stack, 0, active)
    _flush_exits(ops, fp, ip, dim, ex, exd, exaux, exw, nex, Xh, val, stack, exits, 1e-7)
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
        eval_program(ops, fp, ip, dim, Xh, aux, val, stack, 0, n)
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
