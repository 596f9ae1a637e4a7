"""The graph network (torch, training and export only): node states on the matrix graph, one value per lower slot.

Message passing on padded neighbour lists: a gather of neighbour states (ONNX Gather) and a masked mean over the
slots (ONNX ReduceSum), never ``index_add_`` (its ONNX export drops the reduction: silently wrong sums with
repeated indices). Output: the values of the scaled lower-triangular factor on each row's lower slots, as a correction of the
classical FSAI factor (an edge input): G_ij = F_ij + c_ij below the diagonal, G_ii = F_ii exp(c_ii) on it, so
the factor is non-singular and M = G^T G is SPD for any weights. The last layer starts at zero, so an untrained
network is classical FSAI and training starts from it.
"""
from __future__ import annotations

import torch
from torch import nn

from .graph import EDGE_FEATURES, NODE_FEATURES


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
