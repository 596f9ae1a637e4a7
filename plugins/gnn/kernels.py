"""Compiled loops of the gnn set-up (numba): one pass per job over a block's CSR, no Python per row.

A block's rows are sorted global indices and its column indices are sorted within each row (PETSc AIJ and
:meth:`Block.from_scipy` both guarantee it), so local numbers (the rank of a row in the block) keep the global
order: column j <= i globally exactly when it does locally, and a row's lower entries are a prefix of it.
"""
from __future__ import annotations

import numpy as np
from numba import njit

# pragma: no cover - everything below is compiled


@njit(cache=True, nogil=True)
def diagonal(rows, indptr, indices, values):  # pragma: no cover
    """(the diagonal, the first row holding a NaN/Inf entry or -1)."""
    n = len(rows)
    diag = np.zeros(n)
    for i in range(n):
        for e in range(indptr[i], indptr[i + 1]):
            v = values[e]
            if not np.isfinite(v):
                return diag, i
            if indices[e] == rows[i]:
                diag[i] += v
    return diag, -1


@njit(cache=True, nogil=True)
def local_csr(rows, indptr, indices, values):  # pragma: no cover
    """The block's entries whose column is one of its rows: (indptr, local column numbers, values)."""
    n = len(rows)
    if n == 0:
        return np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0)
    first = rows[0]
    if rows[n - 1] - first + 1 == n:  # contiguous rows (one process): inside exactly when first <= column <= last
        inside = True
        for e in range(indptr[n]):
            if indices[e] < first or indices[e] > rows[n - 1]:
                inside = False
                break
        if inside:
            return indptr.copy(), indices - first, values.copy()
    span = rows[n - 1] - first + 1
    table = np.full(span, -1, np.int64)
    for i in range(n):
        table[rows[i] - first] = i
    out_ptr = np.zeros(n + 1, np.int64)
    for i in range(n):
        c = 0
        for e in range(indptr[i], indptr[i + 1]):
            k = indices[e] - first
            if 0 <= k < span and table[k] >= 0:
                c += 1
        out_ptr[i + 1] = out_ptr[i] + c
    cols = np.empty(out_ptr[n], np.int64)
    vals = np.empty(out_ptr[n])
    for i in range(n):
        c = out_ptr[i]
        for e in range(indptr[i], indptr[i + 1]):
            k = indices[e] - first
            if 0 <= k < span and table[k] >= 0:
                cols[c] = table[k]
                vals[c] = values[e]
                c += 1
    return out_ptr, cols, vals


@njit(cache=True, nogil=True)
def symmetry_defect(indptr, cols, vals, owned):  # pragma: no cover
    """(max |a_ij - a_ji| over the entries of the ``owned`` rows and of their columns, the local row where it is
    largest, max |a_ij| over the owned rows' entries), on the block's local CSR; a missing entry counts as 0.
    Row i of A is merged with row i of A^T (built by a counting sort: its columns come out sorted)."""
    n = len(indptr) - 1
    t_ptr = np.zeros(n + 1, np.int64)
    for e in range(indptr[n]):
        t_ptr[cols[e] + 1] += 1
    for i in range(n):
        t_ptr[i + 1] += t_ptr[i]
    fill = t_ptr[:-1].copy()
    t_cols = np.empty(indptr[n], np.int64)
    t_vals = np.empty(indptr[n])
    for i in range(n):
        for e in range(indptr[i], indptr[i + 1]):
            k = fill[cols[e]]
            t_cols[k] = i
            t_vals[k] = vals[e]
            fill[cols[e]] = k + 1
    worst, where, scale = 0.0, -1, 0.0
    for i in range(n):
        if not owned[i]:
            continue
        e, stop = indptr[i], indptr[i + 1]
        f, t_stop = t_ptr[i], t_ptr[i + 1]
        while e < stop or f < t_stop:
            if f >= t_stop or (e < stop and cols[e] < t_cols[f]):
                d = abs(vals[e])
                scale = max(scale, d)
                e += 1
            elif e >= stop or t_cols[f] < cols[e]:
                d = abs(t_vals[f])
                f += 1
            else:
                scale = max(scale, abs(vals[e]))
                d = abs(vals[e] - t_vals[f])
                e += 1
                f += 1
            if d > worst:
                worst, where = d, i
    return worst, where, scale


@njit(cache=True, nogil=True)
def node_features(rows, indptr, indices, values, diag):  # pragma: no cover
    """[n, 3] float32: log(1 + off-diagonal count), off-diagonal row sum and absolute row sum over a_ii."""
    n = len(rows)
    out = np.empty((n, 3), np.float32)
    for i in range(n):
        count, s, a = 0, 0.0, 0.0
        for e in range(indptr[i], indptr[i + 1]):
            if indices[e] != rows[i]:
                x = values[e] / diag[i]
                count += 1
                s += x
                a += abs(x)
        out[i, 0] = np.log1p(float(count))
        out[i, 1] = s
        out[i, 2] = a
    return out


@njit(cache=True, nogil=True)
def scale_values(indptr, cols, vals, diag):  # pragma: no cover
    """a_ij / sqrt(a_ii a_jj) on the local CSR."""
    out = np.empty(len(vals))
    for i in range(len(indptr) - 1):
        for e in range(indptr[i], indptr[i + 1]):
            out[e] = vals[e] / np.sqrt(diag[i] * diag[cols[e]])
    return out


@njit(cache=True, nogil=True)
def lower_counts(indptr, cols):  # pragma: no cover
    """Entries with column <= row in each row (a prefix of the row: columns are sorted)."""
    n = len(indptr) - 1
    out = np.zeros(n, np.int64)
    for i in range(n):
        c = 0
        for e in range(indptr[i], indptr[i + 1]):
            if cols[e] <= i:
                c += 1
        out[i] = c
    return out


@njit(cache=True, nogil=True)
def within_hops(indptr, cols, seeds, hops):  # pragma: no cover
    """Mask of the rows within ``hops`` hops of the rows ``seeds`` in the graph of the local CSR."""
    n = len(indptr) - 1
    mask = np.zeros(n, np.bool_)
    frontier = np.empty(n, np.int64)
    size = 0
    for s in seeds:
        if not mask[s]:
            mask[s] = True
            frontier[size] = s
            size += 1
    nxt = np.empty(n, np.int64)
    for _ in range(hops):
        grown = 0
        for k in range(size):
            i = frontier[k]
            for e in range(indptr[i], indptr[i + 1]):
                j = cols[e]
                if not mask[j]:
                    mask[j] = True
                    nxt[grown] = j
                    grown += 1
        frontier, nxt = nxt, frontier
        size = grown
    return mask


@njit(cache=True, nogil=True)
def pad(indptr, cols, vals, fsai, K):  # pragma: no cover
    """The network's padded inputs: neighbours [n, K] (padding: the row itself) and edge features [n, K, 5]
    (value, lower, upper, self, fsai; all zero on padding)."""
    n = len(indptr) - 1
    neighbours = np.empty((n, K), np.int64)
    edge = np.zeros((n, K, 5), np.float32)
    for i in range(n):
        s = 0
        for e in range(indptr[i], indptr[i + 1]):
            c = cols[e]
            neighbours[i, s] = c
            edge[i, s, 0] = vals[e]
            edge[i, s, 1] = 1.0 if c < i else 0.0
            edge[i, s, 2] = 1.0 if c > i else 0.0
            edge[i, s, 3] = 1.0 if c == i else 0.0
            edge[i, s, 4] = fsai[e]
            s += 1
        for k in range(s, K):
            neighbours[i, k] = i
    return neighbours, edge


@njit(cache=True, nogil=True)
def lower_rows_padded(which, indptr, cols, lower, rows, diag, slot_values):  # pragma: no cover
    """CSR (indptr, global columns, values) of the factor rows ``which`` from per-slot values [n, K] of the scaled
    problem, unscaled: G_ij = Gs_ij / sqrt(a_jj)."""
    m = len(which)
    out_ptr = np.zeros(m + 1, np.int64)
    for k in range(m):
        out_ptr[k + 1] = out_ptr[k] + lower[which[k]]
    gcols = np.empty(out_ptr[m], np.int64)
    out = np.empty(out_ptr[m])
    for k in range(m):
        i = which[k]
        for s in range(lower[i]):
            c = cols[indptr[i] + s]
            gcols[out_ptr[k] + s] = rows[c]
            out[out_ptr[k] + s] = np.float64(slot_values[i, s]) / np.sqrt(diag[c])
    return out_ptr, gcols, out


@njit(cache=True, nogil=True)
def lower_structure(which, indptr, cols, lower, rows):  # pragma: no cover
    """(indptr, global columns) of the factor rows ``which`` (same order as :func:`lower_rows_padded`)."""
    m = len(which)
    out_ptr = np.zeros(m + 1, np.int64)
    for k in range(m):
        out_ptr[k + 1] = out_ptr[k] + lower[which[k]]
    gcols = np.empty(out_ptr[m], np.int64)
    for k in range(m):
        i = which[k]
        for s in range(lower[i]):
            gcols[out_ptr[k] + s] = rows[cols[indptr[i] + s]]
    return out_ptr, gcols


@njit(cache=True, nogil=True)
def lower_rows_flat(which, indptr, cols, lower, diag, values):  # pragma: no cover
    """Values of the same rows (same order as :func:`lower_rows_padded`) from values on the pattern's entries."""
    total = 0
    for i in which:
        total += lower[i]
    out = np.empty(total)
    k = 0
    for i in which:
        for s in range(lower[i]):
            e = indptr[i] + s
            out[k] = values[e] / np.sqrt(diag[cols[e]])
            k += 1
    return out


@njit(cache=True, nogil=True)
def copy_rows(which, local, indptr, parent_indptr, parent_values, out):  # pragma: no cover
    """out[row i's entries] = parent_values[row local[i]'s entries] for the rows ``which``; returns the first row
    whose length differs from its parent row (-1: none)."""
    for i in which:
        start, count = indptr[i], indptr[i + 1] - indptr[i]
        first = parent_indptr[local[i]]
        if parent_indptr[local[i] + 1] - first != count:
            return i
        for k in range(count):
            out[start + k] = parent_values[first + k]
    return -1
