"""Gradient supervision (Teney et al., ECCV 2020), usable on its own.

    L_gs = mean over supervised rows i of (1 - cos(g_i, t_i))
    g_i  = d logit_c(x_i) / d x_i                 (logits, never probabilities)
    t_i  = sign(y_j[c] - y_i[c]) * (x_j - x_i)    (j: the partner of i)

Class c: the ground-truth class of i when it differs in j, else that of j (so a
VQA counterfactual with no answer uses its original's answer); binary
single-logit models use their one logit; multi-label rows use every class that
differs, folded into one signed sum of logits so that one
`torch.autograd.grad(..., create_graph=True)` serves the whole batch.

Rows must not interact in `head` (no batch statistics after `x`), so the
gradient of the summed selected logits w.r.t. `x` is exactly each row's own g.
"""

from __future__ import annotations

import torch

from cftrain.labels import Labels, training_labels

EPS = 1e-8


def as_edges(partner: torch.Tensor) -> torch.Tensor:
    """(E, 2) directed (row, partner) edges from a (B,) partner index (-1: no partner)."""
    if partner.dim() == 2:
        return partner
    rows = torch.nonzero(partner >= 0).squeeze(1)
    return torch.stack([rows, partner[rows]], dim=1)


def random_edges(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each row with a random other row of the batch (the paper's random-relations ablation)."""
    if n < 2:
        return torch.zeros((0, 2), dtype=torch.long)
    offset = torch.randint(1, n, (n,), generator=generator)
    rows = torch.arange(n)
    return torch.stack([rows, (rows + offset) % n], dim=1)


def class_weights(targets: torch.Tensor, edges: torch.Tensor, kind, partner_class: bool = False) -> torch.Tensor:
    """(E, C) signs sign(y_j[c] - y_i[c]) on the supervised class(es) of each edge, 0 elsewhere.

    `targets` is dense (B, C): one column of 0/1 for binary single-logit models,
    one-hot for multiclass, multi-hot for multilabel, soft scores for soft; the
    class choice belongs to the label kind (`cftrain.labels`); `kind` is its name or its `Labels`.
    """
    labels = kind if isinstance(kind, Labels) else training_labels(kind)
    return labels.gs_weights(targets, edges, partner_class=partner_class)


def first_edge_of_rows(edges: torch.Tensor, n: int) -> torch.Tensor:
    """(n,) index of each row's first edge in `edges` (len(edges) for a row with none)."""
    first = torch.full((n,), len(edges), dtype=torch.long, device=edges.device)
    return first.scatter_reduce_(0, edges[:, 0], torch.arange(len(edges), device=edges.device), reduce="amin")


def rows_classes(weights: torch.Tensor, edges: torch.Tensor, n: int) -> tuple:
    """(row_weights (n, C), kept (E,)): one weight row per batch row, its first edge's (which
    decides its class); an edge is kept when it has a class and its row's weights are its own
    (an edge that would need another class for the same row cannot share that row's one g)."""
    is_first = first_edge_of_rows(edges, n).index_select(0, edges[:, 0]) == \
        torch.arange(len(edges), device=edges.device)
    row_weights = weights.new_zeros((n, weights.shape[1])).index_copy_(0, edges[is_first, 0], weights[is_first])
    kept = weights.abs().sum(1) > 0
    later = torch.nonzero(~is_first).squeeze(1)
    if len(later):  # rows with several edges (pair groups): only those can disagree with their row
        kept[later] &= (row_weights.index_select(0, edges[later, 0]) == weights.index_select(0, later)).all(1)
    return row_weights, kept


def edge_cosines(x: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor, edges: torch.Tensor,
                 label_kind: str, create_graph: bool = True, members: bool = False,
                 constant_direction: bool = False, sign_edges: torch.Tensor | None = None,
                 space=None, unsigned: bool = False, partner_class: bool = False) -> tuple:
    """(cos, valid): cos(g_i, t_i) of every edge (i, j) of a batch, (E, N), and which edges are
    supervised (rows skipped as gs_loss says), with one `torch.autograd.grad` over the batch;
    differentiable when `create_graph`. `members`: x is (B, N, ...) and logits (B, N, C), N
    independent ensemble members on the same batch (each member's g is its own slice); else N = 1.
    `constant_direction`: t carries no graph (x is data, not a function of parameters: the
    parameters' gradients are the same, without the backward work through t).
    `sign_edges`: (E, 2) edges whose labels give each edge's class and sign (default: `edges`
    themselves); the direction t always comes from `edges`; `unsigned`: their class, sign dropped.
    `space`: a `cftrain.gs_space.DataSpace` when x is data read through maps linear in it: g is
    never formed, the logits are differentiated w.r.t. `space.outputs` instead.
    `partner_class`: each edge supervises its partner's class (`Labels.gs_weights`); a row whose
    edges need several classes gets one gradient per class (one `autograd.grad` per round)."""
    if logits.dim() == 1:
        logits = logits[:, None]
    if logits.dim() == 2:
        logits = logits.unsqueeze(1)
    edges = edges.to(x.device)
    weights = class_weights(targets.to(logits.dtype), edges if sign_edges is None else sign_edges.to(x.device),
                            label_kind, partner_class)
    if unsigned:
        weights = weights.abs()
    if not partner_class:  # one class per row: one round
        return _round_cosines(x, logits, edges, weights, create_graph, members, constant_direction, space)[:2]
    cos = logits.new_zeros((len(edges), logits.shape[1]))
    valid = torch.zeros(cos.shape, dtype=torch.bool, device=cos.device)
    pending = torch.nonzero(weights.abs().sum(1) > 0).squeeze(1)
    known = space.known if space is not None else None
    while len(pending):  # each round serves every row's first pending class: it ends
        if known is not None:
            space.known = known.index_select(0, pending)
        round_cos, round_valid, kept = _round_cosines(x, logits, edges[pending], weights[pending], create_graph,
                                                      members, constant_direction, space, retain=True)
        cos, valid[pending] = cos.index_put((pending,), round_cos), round_valid
        pending = pending[~kept]
    if space is not None:
        space.known = known
    return cos, valid


def _round_cosines(x, logits, edges, weights, create_graph, members, constant_direction, space, retain=None):
    """(cos, valid, kept) of the edges that share their row's class (`rows_classes`), one autograd.grad."""
    row_weights, first = rows_classes(weights, edges, len(x))
    selected = (logits * row_weights[:, None, :]).sum()
    n_members = logits.shape[1]
    if not selected.requires_grad or len(edges) == 0:
        empty = logits.new_zeros((len(edges), n_members))
        return empty, empty.bool(), torch.ones(len(edges), dtype=torch.bool, device=edges.device)
    retain = create_graph if retain is None else retain
    if space is not None:
        grads = torch.autograd.grad(selected, space.outputs, create_graph=create_graph, retain_graph=retain)
        dot, g_sq = space.products(grads, edges)
        g_norm, t_norm = g_sq.clamp(min=EPS ** 2).sqrt(), space.distances(edges)[:, None]
    else:
        grad = torch.autograd.grad(selected, x, create_graph=create_graph, retain_graph=retain)[0]
        g = (grad.unsqueeze(1) if not members else grad).flatten(2).index_select(0, edges[:, 0])
        flat = (x if members else x.unsqueeze(1)).flatten(2)
        t = data_difference(flat, edges) if constant_direction else \
            flat.index_select(0, edges[:, 1]) - flat.index_select(0, edges[:, 0])
        dot, g_norm, t_norm = (g * t).sum(2), g.norm(dim=2), t.norm(dim=2)
    valid = first[:, None] & (g_norm > EPS) & (t_norm > EPS)
    cos = dot / (g_norm * t_norm).clamp(min=EPS)
    return cos, valid, first


def pair_sign_edges(drawn: torch.Tensor, pairs: torch.Tensor, n: int) -> tuple:
    """The drawn random edges (i, r) whose row i has a pair, and for each the pair's own edge
    (i, p(i)): the random-relations variant that keeps each row's class and sign, with a random
    direction. `n`: rows in the batch."""
    first = first_edge_of_rows(pairs, n)
    drawn = drawn[first[drawn[:, 0]] < len(pairs)]
    return drawn, pairs[first[drawn[:, 0]]]


RANDOM_SIGNS = ("partner", "pair", "none")  # the random-relations variants (cftrain.methods)


def data_difference(values: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """values[j] - values[i] for every edge (i, j), without a graph, subtracted in place (the
    allocation of a third edge-sized copy cost 10x the arithmetic for 2048-d inputs)."""
    values = values.detach()
    return values.index_select(0, edges[:, 1]).sub_(values.index_select(0, edges[:, 0]))


def edge_distances(values: torch.Tensor, edges: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """|values[j] - values[i]| for every edge, a few edges (`chunk`; default about 2^17 values) at a
    time: small buffers are reused by the allocator, where edge-sized ones were fresh pages on every
    step (bench/gs_step.py)."""
    chunk = chunk or max(4, (1 << 17) // max(1, values.shape[1]))
    out = values.new_empty(len(edges))
    for start in range(0, len(edges), chunk):
        out[start:start + chunk] = torch.linalg.vector_norm(data_difference(values, edges[start:start + chunk]), dim=1)
    return out


def gs_sums(x: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor, partner: torch.Tensor,
            label_kind: str, random: bool = False, generator: torch.Generator | None = None,
            members: bool = False, constant_direction: bool = False, random_sign: str = "partner",
            space=None, partner_class: bool = False, rows: torch.Tensor | None = None) -> tuple:
    """(sums, counts, mean cosine): per member, the sum of 1 - cos(g_i, t_i) over the supervised
    edges and their number; `rows` (B,) bool: only edges whose row i is one of them (the rows this
    process owns of a batch every process holds). Arguments as `gs_loss`."""
    edges, sign_edges = as_edges(partner).long(), None
    if random:
        drawn = random_edges(len(x), generator)
        if random_sign in ("pair", "none"):
            edges, sign_edges = pair_sign_edges(drawn, edges.cpu(), len(x))
        else:
            edges = drawn
        if space is not None:
            space.known = None
    cos, valid = edge_cosines(x, logits, targets, edges, label_kind, members=members,
                              constant_direction=constant_direction, sign_edges=sign_edges,
                              space=space, unsigned=random and random_sign == "none", partner_class=partner_class)
    if rows is not None:
        valid = valid & rows.to(valid.device).index_select(0, edges[:, 0].to(valid.device))[:, None]
    sums = torch.where(valid, 1.0 - cos, torch.zeros_like(cos)).sum(0)
    mean_cos = float(cos[valid].detach().mean()) if valid.any() else float("nan")
    return sums, valid.sum(0), mean_cos


def keep_sums(x: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor, edges: torch.Tensor,
              members: bool = False, constant_direction: bool = False, space=None,
              rows: torch.Tensor | None = None) -> tuple:
    """(sums, counts): GS's counterpart on keep pairs (the edit should not change the prediction),
    per member, the sum of cos(g_i, t_i)^2 over the edges (i, j) of keep pairs and their number.

    The label is the same on both sides, so to first order the row's own logit should not move
    along the edit: logit_c(x_j) - logit_c(x_i) ~ g_i . t_i = 0, with g_i the gradient of the row's
    class logit c (its labelled classes; binary single-logit models: their one logit). Scaled like
    GS's 1 - cos, the penalty is cos(g_i, t_i)^2 in [0, 1]: 0 when the gradient is orthogonal to
    the edit, 1 when it points along it (either way). `space`: its known distances must be those
    of `edges`."""
    if logits.dim() == 2:
        logits = logits.unsqueeze(1)
    edges = edges.long().to(x.device)
    if not len(edges):
        zero = logits.new_zeros(logits.shape[1])
        return zero, zero
    own = targets.to(logits.dtype).index_select(0, edges[:, 0])
    weights = torch.ones_like(own) if own.shape[1] == 1 else own
    cos, valid, _ = _round_cosines(x, logits, edges, weights, True, members, constant_direction, space)
    if rows is not None:
        valid = valid & rows.to(valid.device).index_select(0, edges[:, 0])[:, None]
    return torch.where(valid, cos.pow(2), torch.zeros_like(cos)).sum(0), valid.sum(0)


def gs_loss(x: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor, partner: torch.Tensor,
            label_kind: str, random: bool = False, generator: torch.Generator | None = None,
            members: bool = False, reduce_counts=None, constant_direction: bool = False,
            random_sign: str = "partner", space=None, partner_class: bool = False) -> tuple[torch.Tensor, dict]:
    """The GS term of a batch, and stats (rows supervised, mean cosine).

    x: (B, ...) GS-space inputs, part of the graph that produced `logits` (B, C); with `members`,
    (B, N, ...) and (B, N, C) for N ensemble members, and the term is the sum over members of each
    member's mean (so each member's gradient is what it would be alone).
    partner: (B,) partner row per row (-1: none) or (E, 2) directed edges.
    Rows whose g or t has a near-zero norm, or with no differing class, are skipped.
    `random`: each row related to a random other row r of the batch instead of its partner; with
    `random_sign` "partner", class and sign come from r's label (sign(y_r - y_i), same-label r
    skipped), with "pair", from the row's own pair (t = x_r - x_i signed as the pair's would be),
    with "none", the class from the row's own pair and no sign (t = x_r - x_i for every row).
    `reduce_counts` (data-parallel training) sums the per-member edge counts across processes,
    so that each process's share is normalised by the global count. `space`: see edge_cosines
    (its known distances, those of `partner`'s edges, are not used for random relations).
    `partner_class`: each edge supervises its partner's class (see edge_cosines).
    """
    sums, counts, mean_cos = gs_sums(x, logits, targets, partner, label_kind, random, generator, members,
                                     constant_direction, random_sign, space, partner_class)
    if reduce_counts is not None:
        counts = reduce_counts(counts.clone())
    if not counts.any():
        return logits.sum() * 0.0, {"rows": 0, "cosine": float("nan")}
    term = (sums / counts.clamp(min=1))[counts > 0].sum()
    return term, {"rows": int(counts.sum()), "cosine": mean_cos, "members": int((counts > 0).sum())}
