"""The graph networks (torch, training and export only): node states on the matrix graph, one value per lower slot.

Two architectures (:data:`NETWORKS`), both reading the same inputs and writing the same output:

* ``gated`` (:class:`GatedFactorGNN`, the default): the message from j to i is linear in j's state, gated per channel
  by a linear function of the edge features (no bias: padded slots, whose features are all zero, send nothing);
  every multilayer perceptron is per node. Per padded slot only a gather, a small product and a sum, so it is
  about 2x cheaper in ONNX Runtime than ``mlp`` at the same width;
* ``mlp`` (:class:`FactorGNN`): a GELU perceptron on every padded slot (the first architecture).

Message passing on padded neighbour lists: a gather of neighbour states (ONNX Gather) and a masked mean over the
slots (ONNX ReduceSum), never ``index_add_`` (its ONNX export drops the reduction: silently wrong sums with
repeated indices). Output: the values of the scaled lower-triangular factor on each row's lower slots, as a
correction of the classical FSAI factor (an edge input): G_ij = F_ij + c_ij below the diagonal, G_ii = F_ii exp(c_ii)
on it, so the factor is non-singular and M = G^T G is SPD for any weights. The last layer starts at zero, so an
untrained network is classical FSAI and training starts from it.
"""
from __future__ import annotations

import torch
from torch import nn

from .graph import EDGE_FEATURES, NODE_FEATURES


class _GatedLayer(nn.Module):
    def __init__(self, hidden: int, width: int):
        super().__init__()
        self.message = nn.Linear(hidden, width, bias=False)
        self.gate = nn.Linear(len(EDGE_FEATURES), width, bias=False)
        self.update = nn.Sequential(nn.Linear(hidden + width, hidden), nn.GELU(), nn.Linear(hidden, hidden))

    def forward(self, h, edge, neighbours, count):
        agg = (self.message(h)[neighbours] * self.gate(edge)).sum(dim=1) / count
        return h + self.update(torch.cat([h, agg], dim=1))


class GatedFactorGNN(nn.Module):
    """``forward(node [n,F], edge [n,K,E], neighbours [n,K] int64) -> [n,K]`` factor values, as :class:`FactorGNN`.

    ``width`` channels per message; the output on slot (i, j) is ``sum_e edge_ije (a_e(h_i) + b_e(h_j)) +
    sum_r c_r(h_i) d_r(h_j)`` (``rank`` terms), linear maps of the two end states: no perceptron per slot. The
    maps from h_i start at zero, so an untrained network is classical FSAI."""

    def __init__(self, hidden: int = 16, layers: int = 2, width: int = 8, rank: int = 4):
        super().__init__()
        self.hidden, self.layers, self.width, self.rank = hidden, layers, width, rank
        self.encode = nn.Sequential(nn.Linear(len(NODE_FEATURES), hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.steps = nn.ModuleList(_GatedLayer(hidden, width) for _ in range(layers))
        E = len(EDGE_FEATURES)
        # four separate maps rather than two wider ones sliced: a slice of a per-slot tensor is a copy in ONNX
        self.out_own, self.out_other = nn.Linear(hidden, E), nn.Linear(hidden, E, bias=False)
        self.pair_own, self.pair_other = nn.Linear(hidden, rank), nn.Linear(hidden, rank, bias=False)
        for zero in (self.out_own.weight, self.out_own.bias, self.out_other.weight, self.pair_own.weight,
                     self.pair_own.bias):
            nn.init.zeros_(zero)

    @property
    def rings(self) -> int:
        return self.layers + 1

    def forward(self, node, edge, neighbours):
        count = edge[..., 1:4].sum(dim=(1, 2)).clamp(min=1.0)[:, None]  # lower + upper + self: real slots per row
        h = self.encode(node)
        for step in self.steps:
            h = step(h, edge, neighbours, count)
        raw = ((edge * (self.out_own(h)[:, None, :] + self.out_other(h)[neighbours])).sum(dim=-1)
               + (self.pair_own(h)[:, None, :] * self.pair_other(h)[neighbours]).sum(dim=-1))
        lower, diagonal, base = edge[..., 1], edge[..., 3], edge[..., 4]
        return torch.where(diagonal > 0, base * torch.exp(raw), base + raw * lower)


class _Layer(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.own = nn.Linear(hidden, hidden)
        self.other = nn.Linear(hidden, hidden, bias=False)
        self.edge = nn.Linear(len(EDGE_FEATURES), hidden, bias=False)
        self.message = nn.Linear(hidden, hidden)
        self.update = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden))

    def forward(self, h, edge, neighbours, mask, count):
        # per slot only a gather, adds and the activation; every matrix product is per node (the message's
        # output layer is linear, so it is applied after the masked mean instead of on every slot)
        m = torch.nn.functional.gelu(self.own(h)[:, None, :] + self.other(h)[neighbours] + self.edge(edge))
        agg = self.message((m * mask).sum(dim=1) / count)
        return h + self.update(torch.cat([h, agg], dim=1))


class FactorGNN(nn.Module):
    """``forward(node [n,F], edge [n,K,E], neighbours [n,K] int64) -> [n,K]`` factor values (zero off the lower
    slots). ``layers`` message-passing steps: the receptive field is ``layers + 1`` rings (the output on slot (i, j)
    reads the states of i and j)."""

    def __init__(self, hidden: int = 32, layers: int = 3):
        super().__init__()
        self.hidden, self.layers = hidden, layers
        self.encode = nn.Sequential(nn.Linear(len(NODE_FEATURES), hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.steps = nn.ModuleList(_Layer(hidden) for _ in range(layers))
        self.out_own = nn.Linear(hidden, hidden)
        self.out_other = nn.Linear(hidden, hidden, bias=False)
        self.out_edge = nn.Linear(len(EDGE_FEATURES), hidden, bias=False)
        self.out = nn.Linear(hidden, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @property
    def rings(self) -> int:
        return self.layers + 1

    def forward(self, node, edge, neighbours):
        mask = edge[..., 1:].sum(dim=-1, keepdim=True)  # lower + upper + self: 1 on real slots, 0 on padding
        count = mask.sum(dim=1).clamp(min=1.0)
        h = self.encode(node)
        for step in self.steps:
            h = step(h, edge, neighbours, mask, count)
        z = torch.nn.functional.gelu(self.out_own(h)[:, None, :] + self.out_other(h)[neighbours] + self.out_edge(edge))
        raw = self.out(z)[..., 0]
        lower, diagonal, base = edge[..., 1], edge[..., 3], edge[..., 4]
        return torch.where(diagonal > 0, base * torch.exp(raw), base + raw * lower)


NETWORKS = {"gated": GatedFactorGNN, "mlp": FactorGNN}


def build_network(kind: str, hidden: int, layers: int, width: int = 8, rank: int = 4) -> nn.Module:
    """A new untrained network of architecture ``kind`` (:data:`NETWORKS`)."""
    if kind == "gated":
        return GatedFactorGNN(hidden, layers, width, rank)
    if kind == "mlp":
        return FactorGNN(hidden, layers)
    raise ValueError(f"unknown network {kind!r}; valid: {', '.join(NETWORKS)}")
