"""Domains for Walk-on-Spheres, described by signed distance functions.

Sign convention (the usual one in geometry processing): the signed distance is **negative inside** the domain,
zero on the boundary and positive outside. Every domain gives

- ``sdf(X)``: the signed distance (or a conservative bound on it) at points ``X`` of shape ``(dim, n)``;
- ``radius(X)``: the distance to the boundary for points known to be inside (the hot path of the walk loop,
  so it skips any inside/outside test a domain does not need there);
- ``closest(X)``: the closest boundary point, where the walk's exit is evaluated.

A bound that is smaller than the true distance is safe for WoS (the spheres stay inside, walks just take more
steps); a bound that is larger is not. Unions and differences below are such lower bounds.
Points are stored as ``(dim, n)`` arrays so each coordinate is one contiguous row (faster vector maths).

Every domain here except ``SDFDomain`` (a Python callable) also writes itself into a program for the compiled walk
kernel (``emit``, see program.py); ``radius`` evaluates that program, so checks and walks use the same distances.
"""
from __future__ import annotations

import numpy as np

from accel.errors import DomainError

from . import kernel
from .program import NotCompiled, compile_domain, evaluate


class Domain:
    """Base class. Subclasses set ``dim`` and ``bounds`` (lo, hi) and implement ``sdf``."""

    dim: int
    bounds: tuple[np.ndarray, np.ndarray]
    signed_in_kernel = True  # its compiled distance is signed (usable inside unions, intersections, differences)

    def sdf(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def radius(self, X: np.ndarray) -> np.ndarray:
        prog = compile_domain(self)
        return -self.sdf(X) if prog is None else evaluate(prog, X)

    def emit(self, b) -> None:
        """Write this domain's ``-sdf`` into a ProgramBuilder; raise NotCompiled when it has no compiled form."""
        raise NotCompiled(type(self).__name__)

    def closest(self, X: np.ndarray) -> np.ndarray:
        """Closest boundary point. The default returns the point itself (used when it is within epsilon)."""
        return X

    # -- composition -----------------------------------------------------------------------------------------------
    def __or__(self, other: "Domain") -> "Domain":
        return Union(self, other)

    def __sub__(self, other: "Domain") -> "Domain":
        return Difference(self, other)

    def __and__(self, other: "Domain") -> "Domain":
        return Intersection(self, other)

    # -- checks ----------------------------------------------------------------------------------------------------
    def inradius(self) -> float:
        """Largest distance from an interior point to the boundary, estimated on a grid (cached)."""
        if getattr(self, "_inradius", None) is None:
            X = _grid_samples(self.bounds, 64 if self.dim == 2 else 24)
            self._inradius = float(max(0.0, np.max(-self.sdf(X))))
        return self._inradius

    def contains(self, X: np.ndarray, tol: float = 0.0) -> np.ndarray:
        return self.sdf(X) <= tol


def _grid_samples(bounds, n):
    lo, hi = (np.asarray(b, dtype=np.float64) for b in bounds)
    axes = [np.linspace(lo[i], hi[i], n) for i in range(len(lo))]
    return np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")])


def _as_vec(v, dim, what):
    a = np.asarray(v, dtype=np.float64).reshape(-1)
    if a.size != dim:
        raise DomainError(f"{what} must have {dim} coordinates, got {a.size}")
    return a


class Ball(Domain):
    """Disk (2D) or ball (3D) of ``radius`` around ``center``."""

    def __init__(self, center=(0.0, 0.0), radius: float = 1.0):
        c = np.asarray(center, dtype=np.float64).reshape(-1)
        if c.size not in (2, 3):
            raise DomainError(f"Ball center must have 2 or 3 coordinates, got {c.size}")
        if not radius > 0:
            raise DomainError(f"Ball radius must be positive, got {radius}")
        self.dim, self.center, self.R = c.size, c, float(radius)
        self.bounds = (c - radius, c + radius)
        self._inradius = self.R

    def _norm(self, X):
        acc = None
        for i in range(self.dim):
            d = X[i] - X.dtype.type(self.center[i])
            acc = d * d if acc is None else acc + d * d
        return np.sqrt(acc, out=acc)

    def sdf(self, X):
        r = self._norm(X)
        r -= X.dtype.type(self.R)
        return r

    def emit(self, b):
        b.op(kernel.OP_BALL, b.floats([*self.center, self.R]))

    def closest(self, X):
        d = [X[i] - self.center[i] for i in range(self.dim)]
        n = np.sqrt(sum(di * di for di in d))
        n[n == 0] = 1.0  # the centre: any direction is closest
        scale = self.R / n
        return np.stack([self.center[i] + d[i] * scale for i in range(self.dim)])


class Box(Domain):
    """Axis-aligned box ``[lo, hi]`` in 2D or 3D."""

    def __init__(self, lo=(0.0, 0.0), hi=(1.0, 1.0)):
        lo = np.asarray(lo, dtype=np.float64).reshape(-1)
        hi = _as_vec(hi, lo.size, "Box hi")
        if lo.size not in (2, 3):
            raise DomainError(f"Box corners must have 2 or 3 coordinates, got {lo.size}")
        if np.any(hi <= lo):
            raise DomainError(f"Box needs hi > lo in every coordinate, got lo={lo.tolist()} hi={hi.tolist()}")
        self.dim, self.lo, self.hi = lo.size, lo, hi
        self.c, self.h = (lo + hi) / 2, (hi - lo) / 2
        self.bounds = (lo, hi)
        self._inradius = float(np.min(self.h))

    def _q(self, X):
        t = X.dtype.type
        return [np.abs(X[i] - t(self.c[i])) - t(self.h[i]) for i in range(self.dim)]

    def sdf(self, X):
        q = self._q(X)
        inside = np.minimum(np.maximum.reduce(q), 0)
        outside = np.sqrt(sum(np.maximum(qi, 0) ** 2 for qi in q))
        return inside + outside

    def emit(self, b):
        b.op(kernel.OP_BOX, b.floats([*self.c, *self.h]))

    def closest(self, X):
        P = np.array(X, copy=True)
        q = np.stack(self._q(X))
        inside = np.all(q <= 0, axis=0)
        lo, hi = self.lo.astype(X.dtype).reshape(-1, 1), self.hi.astype(X.dtype).reshape(-1, 1)
        P = np.clip(P, lo, hi)  # outside (or on the boundary): clamping is exact
        if np.any(inside):
            k = np.argmax(q[:, inside], axis=0)  # the nearest face's axis
            cols = np.flatnonzero(inside)
            x = X[k, cols]
            P[k, cols] = np.where(x > self.c[k], self.hi[k], self.lo[k])
        return P


class Union(Domain):
    """Points in ``a`` or ``b``: min of the SDFs, a lower bound on the distance inside (safe for WoS)."""

    def __init__(self, a: Domain, b: Domain):
        _same_dim(a, b)
        self.a, self.b, self.dim = a, b, a.dim
        self.bounds = (np.minimum(a.bounds[0], b.bounds[0]), np.maximum(a.bounds[1], b.bounds[1]))

    def sdf(self, X):
        return np.minimum(self.a.sdf(X), self.b.sdf(X))

    def emit(self, b):
        if not (self.a.signed_in_kernel and self.b.signed_in_kernel):
            raise NotCompiled("set operations on boundary meshes run the Python-driven loop")
        self.a.emit(b)
        self.b.emit(b)
        b.op(kernel.OP_UNION)

    def closest(self, X):
        pick_a = self.a.sdf(X) <= self.b.sdf(X)
        return np.where(pick_a, self.a.closest(X), self.b.closest(X))


class Intersection(Domain):
    """Points in both ``a`` and ``b``: max of the SDFs."""

    def __init__(self, a: Domain, b: Domain):
        _same_dim(a, b)
        self.a, self.b, self.dim = a, b, a.dim
        self.bounds = (np.maximum(a.bounds[0], b.bounds[0]), np.minimum(a.bounds[1], b.bounds[1]))

    def sdf(self, X):
        return np.maximum(self.a.sdf(X), self.b.sdf(X))

    def emit(self, b):
        if not (self.a.signed_in_kernel and self.b.signed_in_kernel):
            raise NotCompiled("set operations on boundary meshes run the Python-driven loop")
        self.a.emit(b)
        self.b.emit(b)
        b.op(kernel.OP_INTERSECT)

    def closest(self, X):
        pick_a = self.a.sdf(X) >= self.b.sdf(X)
        return np.where(pick_a, self.a.closest(X), self.b.closest(X))


class Difference(Domain):
    """Points in ``a`` and not in ``b`` (a hole or a notch): ``max(sdf_a, -sdf_b)``."""

    def __init__(self, a: Domain, b: Domain):
        _same_dim(a, b)
        self.a, self.b, self.dim = a, b, a.dim
        self.bounds = a.bounds

    def sdf(self, X):
        return np.maximum(self.a.sdf(X), -self.b.sdf(X))

    def emit(self, b):
        if not (self.a.signed_in_kernel and self.b.signed_in_kernel):
            raise NotCompiled("set operations on boundary meshes run the Python-driven loop")
        self.a.emit(b)
        self.b.emit(b)
        b.op(kernel.OP_DIFF)

    def closest(self, X):
        pick_a = self.a.sdf(X) >= -self.b.sdf(X)
        return np.where(pick_a, self.a.closest(X), self.b.closest(X))


def _same_dim(a, b):
    if a.dim != b.dim:
        raise DomainError(f"cannot combine a {a.dim}D domain with a {b.dim}D domain")


class SDFDomain(Domain):
    """A user-supplied signed distance function ``f(X) -> (n,)`` with ``X`` of shape ``(dim, n)``.

    ``bounds`` (lo, hi) must enclose the domain: the sign convention is checked on the frame of the box enlarged
    by 10 % (all outside), so an SDF that is positive inside is caught before any walk starts.
    """

    def __init__(self, sdf, bounds, name: str = "custom"):
        lo, hi = (np.asarray(b, dtype=np.float64).reshape(-1) for b in bounds)
        if lo.size not in (2, 3) or hi.size != lo.size or np.any(hi <= lo):
            raise DomainError(f"SDFDomain bounds must be (lo, hi) with 2 or 3 coordinates and hi > lo, got {bounds}")
        self._f, self.dim, self.bounds, self.name = sdf, lo.size, (lo, hi), name
        check_sign_convention(self)

    def sdf(self, X):
        return np.asarray(self._f(X))


def check_sign_convention(domain: Domain, n: int = 16) -> None:
    """Raise DomainError when the SDF is negative outside the bounds (inside-positive convention) or never negative."""
    lo, hi = domain.bounds
    pad = 0.1 * (hi - lo)
    frame = _grid_samples((lo - pad, hi + pad), n)
    on_frame = np.any((frame == (lo - pad)[:, None]) | (frame == (hi + pad)[:, None]), axis=0)
    outside = domain.sdf(frame[:, on_frame])
    if np.mean(outside < 0) > 0.5:
        raise DomainError(
            f"the signed distance function of {getattr(domain, 'name', type(domain).__name__)!r} is negative at "
            f"{np.mean(outside < 0):.0%} of the sample points outside its bounds: this plugin expects negative inside "
            "and positive outside. Flip its sign (pass lambda X: -f(X)) or fix the bounds.")
    inside = domain.sdf(_grid_samples((lo, hi), n))
    if not np.any(inside < 0):
        raise DomainError(
            "the signed distance function is nowhere negative inside its bounds: the domain has no interior "
            "(expected negative inside, positive outside); check the function and the bounds.")


class StarShaped(Domain):
    """2D star-shaped domain ``r < R(t) = scale (1 + c1 cos 4t + c2 cos 8t)`` (the WoS-NO family).

    The curve has no closed-form distance, so ``radius`` is a conservative bound in closed form: with
    ``phi = R(theta) - r`` the radial gap, the closest boundary point lies within ``phi`` of ``x`` (the radial
    boundary point is that far), hence at angles ``|t - theta| <= asin(phi / r)`` and radii ``>= r - phi``; on that
    region ``|grad phi| <= L = sqrt(1 + (max|R'| / (r - phi))^2)``, so ``dist >= phi / L``. Near the boundary ``L``
    tends to the exact ``|grad phi|`` and the bound to the true distance; deep inside the inscribed disk
    ``r < R_min`` gives ``dist >= R_min - r``, and a grid of exact distances (``d(node) - |x - node|``, the distance
    being 1-Lipschitz) takes over where the Lipschitz bound is loose. The compiled kernel gets ``cos 4t`` and
    ``cos 8t`` from ``x / r`` and ``y / r`` by double-angle formulas: no trigonometric call per step.
    Exits are projected radially onto the curve.
    """

    def __init__(self, c1: float = 0.0, c2: float = 0.0, scale: float = 1.0, table_rmax: float | None = None,
                 grid_nodes: int = 128):
        if abs(c1) + abs(c2) >= 1:
            raise DomainError(f"StarShaped needs |c1| + |c2| < 1 to stay star-shaped, got c1={c1}, c2={c2}")
        if not scale > 0:
            raise DomainError(f"StarShaped scale must be positive, got {scale}")
        self.c1, self.c2, self.scale, self.dim = float(c1), float(c2), float(scale), 2
        self.rmin = scale * (1 - abs(c1) - abs(c2))
        rmax = scale * (1 + abs(c1) + abs(c2))
        self.bounds = (np.array([-rmax, -rmax]), np.array([rmax, rmax]))
        self._d1max = scale * (4 * abs(c1) + 8 * abs(c2))  # max |R'|
        self._d2max = scale * (16 * abs(c1) + 64 * abs(c2))  # max |R''|
        self._grid_rmax = table_rmax or rmax
        self._grid_nodes = int(grid_nodes)

    def R(self, t):
        return self.scale * (1 + self.c1 * np.cos(4 * t) + self.c2 * np.cos(8 * t))

    def boundary_points(self, n: int) -> np.ndarray:
        """``n`` points on the curve at equally spaced angles, shape (n, 2)."""
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        return np.stack([self.R(t) * np.cos(t), self.R(t) * np.sin(t)], axis=1)

    def distance_grid(self, samples: int = 4096):
        """(origin, spacing, shape, values): lower bounds on the distance to the curve at the nodes of a square grid
        (0 outside). Each is the distance to ``samples`` curve points (k-d tree) less half the largest gap between
        them, so a lower bound too."""
        from scipy.spatial import cKDTree

        n, rmax = self._grid_nodes, self._grid_rmax
        h = 2 * rmax / (n - 3)
        origin = -rmax - h
        ax = origin + h * np.arange(n)
        gx, gy = np.meshgrid(ax, ax, indexing="ij")
        B = self.boundary_points(samples)
        gap = float(np.max(np.linalg.norm(B - np.roll(B, 1, axis=0), axis=1)))
        d = cKDTree(B).query(np.stack([gx.ravel(), gy.ravel()], 1))[0] - gap / 2
        inside = np.hypot(gx, gy).ravel() < self.R(np.arctan2(gy, gx)).ravel()
        return origin, h, (n, n), np.where(inside, np.maximum(d, 0), 0)

    def kernel_row(self, grid_offset: int) -> np.ndarray:
        """The kernel's parameter row (layout in kernel.star_distance); the grid's values start at grid_offset."""
        origin, h, (nx, ny), _ = self._grid_meta()
        lip_out = np.sqrt(1 + (self._d1max / self.rmin) ** 2)
        return np.array([self.c1, self.c2, self.scale, self.rmin, self._d1max, self._d2max, lip_out,
                         origin, origin, 1 / h, h, nx, ny, grid_offset], dtype=np.float64)

    def _grid_meta(self):
        if getattr(self, "_grid", None) is None:
            self._grid = self.distance_grid()
        return self._grid

    def emit(self, b):
        goff = b.floats(self._grid_meta()[3])
        b.op(kernel.OP_STAR, b.floats(self.kernel_row(goff)))

    def sdf(self, X):
        return -self.radius(X)

    def closest(self, X):
        th = np.arctan2(X[1], X[0])
        R = self.R(th)
        return np.stack([R * np.cos(th), R * np.sin(th)]).astype(X.dtype, copy=False)
