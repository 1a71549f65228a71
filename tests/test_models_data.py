"""Models (encode/head contract), word vectors, and batches of whole pairs."""

import gzip

import numpy as np
import torch

from cftrain.data import PairBatches, SplitTensors, pair_groups
from cftrain.models import make_model
from cftrain.vectors import load_word_vectors


def test_bow_encode_averages_real_tokens_only():
    model = make_model("bow", vocab_size=5)
    batch = {"tokens": torch.tensor([[2, 3, 0, 0], [4, 0, 0, 0]]), "length": torch.tensor([2, 1])}
    x = model.encode(batch)
    emb = model.embed.weight.detach()
    assert torch.allclose(x[0], (emb[2] + emb[3]) / 2) and torch.allclose(x[1], emb[4])
    assert model.head(x, batch).shape == (2, 1)


def test_nli_bow_rows_do_not_mix_in_the_gs_gradient():
    torch.manual_seed(0)
    model = make_model("nli-bow", vocab_size=6, vectors=torch.randn(6, 300))
    model.train()
    tokens = torch.tensor([[2, 3, 0], [4, 5, 1], [2, 2, 2]])
    batch = {"premise_tokens": tokens, "premise_length": torch.tensor([2, 3, 3]),
             "hypothesis_tokens": tokens.flip(0), "hypothesis_length": torch.tensor([3, 3, 2])}
    x = model.encode(batch)
    assert x.shape == (3, 100)
    jac = torch.autograd.functional.jacobian(lambda v: model.head(v, batch)[:, 0], x.detach())
    off_diagonal = [jac[i, j] for i in range(3) for j in range(3) if i != j]
    assert all(torch.count_nonzero(block) == 0 for block in off_diagonal)
    assert not model.embed.weight.requires_grad  # frozen word vectors


def test_nli_bow_input_space_supervises_the_averaged_word_vectors():
    torch.manual_seed(0)
    vectors = torch.randn(6, 300)
    model = make_model("nli-bow", vocab_size=6, vectors=vectors, gs_space="input")
    model.train()
    batch = {"premise_tokens": torch.tensor([[2, 3, 0], [4, 5, 1]]), "premise_length": torch.tensor([2, 3]),
             "hypothesis_tokens": torch.tensor([[5, 0, 0], [2, 2, 3]]), "hypothesis_length": torch.tensor([1, 3])}
    x = model.encode(batch)
    expected_row0 = torch.cat([(vectors[2] + vectors[3]) / 2, vectors[5]])
    expected_row1 = torch.cat([(vectors[4] + vectors[5] + vectors[1]) / 3, (2 * vectors[2] + vectors[3]) / 3])
    assert torch.allclose(x[0], expected_row0, atol=1e-6) and torch.allclose(x[1], expected_row1, atol=1e-6)
    jac = torch.autograd.functional.jacobian(lambda v: model.head(v, batch)[:, 0], x.detach())
    assert torch.count_nonzero(jac[0, 1]) == 0 and torch.count_nonzero(jac[1, 0]) == 0  # layer norm: per row
    assert not model.fusable


def test_word_vectors_text_gz_and_word2vec_header(tmp_path):
    rows = "good 1 2 3\nbad -1 0 1\nunseen 9 9 9\n"
    (tmp_path / "v.txt").write_text(rows)
    with gzip.open(tmp_path / "v.txt.gz", "wt") as fh:
        fh.write("3 3\n" + rows)
    for name in ("v.txt", "v.txt.gz"):
        matrix, found = load_word_vectors(tmp_path / name, ["<pad>", "<unk>", "bad", "good"])
        assert found == 2 and matrix[3].tolist() == [1, 2, 3] and matrix[2].tolist() == [-1, 0, 1]
        assert matrix[0].abs().sum() == 0


def test_pair_groups_join_an_original_with_all_its_edits():
    groups = pair_groups(7, np.array([[0, 1], [0, 2], [0, 3], [4, 5]]))
    assert sorted(map(sorted, (g.tolist() for g in groups))) == [[0, 1, 2, 3], [4, 5], [6]]


def test_batches_hold_whole_pairs_and_both_edge_directions():
    n = 40
    pairs = np.array([[i, i + 1] for i in range(0, n, 2)])
    data = SplitTensors("train", {"x": torch.arange(n, dtype=torch.float32)[:, None]},
                        torch.zeros(n, 1), torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.bool), pairs, {})
    seen = []
    for batch in PairBatches(data, batch_size=7, seed=0):
        rows = batch["x"][:, 0].long().tolist()
        assert len(rows) <= 7 and all((r ^ 1) in rows for r in rows)  # partner present
        edges = batch["edges"].tolist()
        assert len(edges) == len(rows) and all([b, a] in edges for a, b in edges)
        assert all(rows[a] ^ 1 == rows[b] for a, b in edges)
        seen += rows
    assert sorted(seen) == list(range(n))


def test_batches_carry_each_edges_distance_over_the_vector_input():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(9, 5, generator=g)
    pairs = np.array([[0, 1], [0, 2], [3, 4], [5, 6], [5, 7], [5, 8]])  # groups of 3, 2 and 4 rows
    data = SplitTensors("train", {"x": x}, torch.zeros(9, 1), torch.zeros(9, dtype=torch.long),
                        torch.zeros(9, dtype=torch.bool), pairs, {})
    for batch in PairBatches(data, batch_size=4, seed=1):
        a, b = batch["edges"].T
        assert torch.allclose(batch["edge_distances"], (batch["x"][b] - batch["x"][a]).norm(dim=1), atol=1e-6)
    tokens = SplitTensors("train", {"tokens": torch.ones(9, 3, dtype=torch.long)}, torch.zeros(9, 1),
                          torch.zeros(9, dtype=torch.long), torch.zeros(9, dtype=torch.bool), pairs, {})
    assert all("edge_distances" not in batch for batch in PairBatches(tokens, batch_size=4, seed=1))
