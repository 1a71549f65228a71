"""CAD builders: the real release (skipped when absent) and small hand-made releases."""

import json

import pytest

from cfbuild.builders.cad import build_imdb, build_snli
from cfpairs.check import verify_store
from cfpairs.store import Store
from tests.cad_fixtures import HYPO, PREMISE, SENT, mini_imdb, mini_snli
from tests.helpers import CAD_DIR as CAD, CAD_MISSING, run_cli

real = pytest.mark.skipif(CAD_MISSING is not None, reason=CAD_MISSING or "")


@pytest.fixture(scope="module")
def real_stores(tmp_path_factory):
    out = tmp_path_factory.mktemp("cad")
    reports = {"imdb": build_imdb(CAD, out / "imdb.h5"), "snli": build_snli(CAD, out / "snli.h5")}
    return out, reports


@real
@pytest.mark.e2e
def test_real_imdb_counts_defects_and_pairs(real_stores):
    out, reports = real_stores
    report = reports["imdb"]
    assert report["missing_splits"] == ["test"]
    train = report["splits"]["train"]
    assert train["pairs_dropped_identical"] == ["batch_id 8822"]
    assert train["pairs_dropped_same_tokens"] == ["batch_id 3146", "batch_id 3553", "batch_id 18031"]
    assert [p["pair"] for p in train["low_overlap_pairs"]] == ["batch_id 18146"]
    with Store(out / "imdb.h5") as store:
        assert store.splits == ["train", "val"]
        n = {s: len(store.split(s)) for s in store.splits}
        pairs = {s: store.split(s).pairs_index.shape[0] for s in store.splits}
        assert n == {"train": 3414, "val": 490} and pairs == {"train": 1707 - 4, "val": 245}
        assert len(store.vocab) == 20002 and store.split("train").examples["tokens"].shape[1] == 399  # whole reviews by default
        assert all(s["verified"] for s in store.sources)
    assert verify_store(out / "imdb.h5") is None


@real
@pytest.mark.e2e
def test_real_snli_counts_kinds_and_defects(real_stores):
    out, reports = real_stores
    train = reports["snli"]["splits"]["train"]
    identical = train["pairs_dropped_identical"]
    assert sum("premise" in k for k in identical) == 33 and sum("hypothesis" in k for k in identical) == 1
    assert "9 edits also changed" in train["notes"][0]
    with Store(out / "snli.h5") as store:
        split = store.split("train")
        assert len(split) == 8330 and (~split.read("is_counterfactual")).sum() == 1666
        assert len(store.split("val")) == 1000
        kinds = split.pairs_kind.asstr()[()].tolist()
        dropped = len(identical) + len(train["pairs_dropped_same_tokens"])
        assert len(kinds) == 4 * 1666 - dropped
        assert set(kinds) == {"edited_premise", "edited_hypothesis"}
        first = split.pairs_index[:4]  # original row 0 with its 4 edits
        assert first[:, 0].tolist() == [0] * 4 and first[:, 1].tolist() == [1, 2, 3, 4]
    assert verify_store(out / "snli.h5") is None


@real
@pytest.mark.e2e
def test_real_builds_are_deterministic(real_stores, tmp_path):
    out, _ = real_stores
    build_imdb(CAD, tmp_path / "imdb.h5")
    assert Store(tmp_path / "imdb.h5").digest == Store(out / "imdb.h5").digest


# ------------------------------------------------------------------ hand-made releases


def test_mini_imdb_picks_originals_and_drops_same_token_pairs(tmp_path):
    cad = mini_imdb(tmp_path)
    report = build_imdb(cad, tmp_path / "s.h5", allow_unverified=True)
    with Store(tmp_path / "s.h5") as store:
        train = store.split("train")
        assert train.read("id").tolist() == ["1:original", "1:edited", "2:original", "2:edited",
                                              "3:original", "3:edited"]
        assert train.read("label").tolist() == [0, 1, 0, 1, 0, 1]  # batch 2's original is its 2nd row
        assert train.pairs_index[()].tolist() == [[0, 1], [2, 3]]
        assert train.read("text")[2] == "Bad acting, bad story."
        vocab = store.vocab
        tokens = [vocab[t] for t in train.read("tokens")[0][: train.read("length")[0]]]
        assert tokens == ["a", "dull", ",", "boring", "film", ".", "skip", "it", "."]
        assert not any(s["verified"] for s in store.sources)
    assert report["splits"]["train"]["pairs_dropped_same_tokens"] == ["batch_id 3"]
    assert report["missing_splits"] == ["test"]


def test_manifest_mismatch_refused_without_flag(tmp_path):
    cad = mini_imdb(tmp_path)
    result = run_cli("cli.cfbuild", "imdb", "--cad-dir", str(cad), "--out", str(tmp_path / "s.h5"))
    assert result.returncode == 2 and "--allow-unverified-sources" in result.stderr
    assert not (tmp_path / "s.h5").exists()


BAD_IMDB = {
    "one-row batch": (SENT[:5], "batch_id '3' has 1 rows (lines 6)"),
    "three-row batch": (SENT + [("Negative", "extra", "3")], "batch_id '3' has 3 rows"),
    "unknown label": ([("Neutral", "x y", "1"), ("Positive", "x z", "1")], "line 2: unknown label 'Neutral'"),
}


@pytest.mark.parametrize("case", sorted(BAD_IMDB))
def test_bad_imdb_input_exits_2_naming_the_problem(tmp_path, case):
    rows, message = BAD_IMDB[case]
    cad = mini_imdb(tmp_path, rows)
    result = run_cli("cli.cfbuild", "imdb", "--cad-dir", str(cad), "--out", str(tmp_path / "s.h5"),
                     "--allow-unverified-sources")
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "s.h5").exists()


def test_bad_files_exit_2(tmp_path):
    cad = mini_imdb(tmp_path)
    paired = cad / "sentiment/combined/paired/train_paired.tsv"
    cases = [(b"Sentiment\tWords\tbatch_id\nNegative\tx\t1\n", "missing column(s) 'Text'"),
             (b"", "empty file"),
             (b"Sentiment\tText\tbatch_id\nNegative\tcaf\xe9\t1\n", "line 2: not UTF-8")]
    for content, message in cases:
        paired.write_bytes(content)
        result = run_cli("cli.cfbuild", "imdb", "--cad-dir", str(cad), "--out", str(tmp_path / "s.h5"),
                         "--allow-unverified-sources")
        assert result.returncode == 2 and message in result.stderr and str(paired) in result.stderr, result.stderr
        assert not (tmp_path / "s.h5").exists()


def test_asked_for_split_missing_exits_2(tmp_path):
    cad = mini_imdb(tmp_path)
    result = run_cli("cli.cfbuild", "imdb", "--cad-dir", str(cad), "--out", str(tmp_path / "s.h5"),
                     "--allow-unverified-sources", "--splits", "train,test")
    assert result.returncode == 2 and "test_paired.tsv does not exist" in result.stderr


def test_mini_snli_pairs_by_position(tmp_path):
    cad = mini_snli(tmp_path)
    build_snli(cad, tmp_path / "s.h5", allow_unverified=True)
    with Store(tmp_path / "s.h5") as store:
        train = store.split("train")
        assert store.input_kind == "text_pair" and store.class_names == ["entailment", "neutral", "contradiction"]
        assert train.read("label").tolist() == [0, 1, 2, 2, 1]
        assert train.pairs_index[()].tolist() == [[0, 1], [0, 2], [0, 3], [0, 4]]
        assert train.pairs_kind.asstr()[()].tolist() == ["edited_premise"] * 2 + ["edited_hypothesis"] * 2
        assert train.read("premise_text")[1] == "A man holds a guitar."
        assert train.read("id").tolist()[:2] == ["original:2", "revised_premise:2"]


def test_snli_structure_errors(tmp_path):
    cases = [
        (dict(premise=PREMISE[:1]), "1 rows, expected twice the 1"),
        (dict(hypo=[("Dogs run in a park.", "Cats sleep on sofas.", "neutral"), HYPO[1]]), "look misaligned"),
    ]
    for kwargs, message in cases:
        cad = mini_snli(tmp_path, **kwargs)
        result = run_cli("cli.cfbuild", "snli", "--cad-dir", str(cad), "--out", str(tmp_path / "s.h5"),
                         "--allow-unverified-sources")
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert not (tmp_path / "s.h5").exists()


def test_cli_build_prints_report_and_inspect_shows_it(tmp_path):
    cad = mini_imdb(tmp_path)
    result = run_cli("cli.cfbuild", "imdb", "--cad-dir", str(cad), "--out", str(tmp_path / "s.h5"),
                     "--allow-unverified-sources")
    assert result.returncode == 0 and "batch_id 3" in result.stdout and "skipped" in result.stdout
    inspect = json.loads(run_cli("cli.cfbuild", "inspect", str(tmp_path / "s.h5"), "--json").stdout)
    assert inspect["report"]["splits"]["train"]["pairs"] == 2
