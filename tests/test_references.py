"""The reference block: each reference row equals scikit-learn fitted here, independently (GridSearchCV
over the same folds of pair groups, the accuracies and pair consistency counted by hand); text pairs
read the hand-worked pair features; a table shows the block, keeps it, and leaves it out on request."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from cfbuild.builders.table import build_table
from cfpairs import open_store
from cftrain.reference_rows import collect_references, keep_references, read_reference
from cftrain.references import REFERENCES, pair_features
from tests.helpers import covering, ok, refused

sklearn = pytest.importorskip("sklearn")
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV, GroupKFold  # noqa: E402
from sklearn.naive_bayes import MultinomialNB  # noqa: E402

GOOD, BAD = ["good", "great", "fine", "lovely"], ["bad", "awful", "poor", "dull"]
CLASSES = ["negative", "positive"]
FILLER = ["film", "plot", "actor", "scene", "story", "music", "not", "very", "the", "long"]


def reviews(n: int, seed: int) -> list:
    """n pair groups: a review with sentiment and filler words, its edit with the sentiment swapped;
    a tenth of the labels flipped so that the parameter choice and the scores are not trivial."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n):
        y = int(rng.integers(2))
        words = list(rng.choice(FILLER, 6)) + list(rng.choice(GOOD if y else BAD, 2))
        rng.shuffle(words)
        swap = {w: (BAD if w in GOOD else GOOD)[(GOOD + BAD).index(w) % 4] for w in GOOD + BAD}
        edit = [swap.get(w, w) for w in words]
        flip = rng.random() < 0.1
        rows.append({"g": g, "t": " ".join(words), "h": " ".join(rng.choice(FILLER, 3)), "y": CLASSES[y ^ flip]})
        rows.append({"g": g, "t": " ".join(edit), "h": " ".join(rng.choice(FILLER, 3)), "y": CLASSES[1 - (y ^ flip)]})
    return rows


@pytest.fixture(scope="module")
def text_stores(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("references")
    files = {}
    for split, (n, seed) in {"train": (60, 0), "val": (25, 1), "test": (20, 2)}.items():
        files[split] = root / f"{split}.jsonl"
        files[split].write_text("".join(json.dumps(r) + "\n" for r in reviews(n, seed)))
    build_table(files, root / "text.h5", text_cols=["t"], label_col="y", pair_col="g")
    build_table(files, root / "pair.h5", text_cols=["t", "h"], label_col="y", pair_col="g")
    return {"text": root / "text.h5", "text_pair": root / "pair.h5"}


def sklearn_reference(store_path, name: str, originals_only: bool = False) -> dict:
    """The reference as a user would fit it with scikit-learn: {chosen value, {split: accuracy on
    all, originals, edits; pair consistency}} in %."""
    with open_store(store_path) as store:
        pair = store.input_kind == "text_pair"

        def texts(split):
            e = store[split].examples
            return [f"{p}\x1f{h}" for p, h in zip(e["premise_text"], e["hypothesis_text"])] if pair else list(e["text"])

        train = store["train"]
        keep = ~train.examples["is_counterfactual"] if originals_only else np.ones(len(train), bool)
        y = train.examples["label"][keep]
        groups = train.pair_ids[keep]
        options = {"analyzer": pair_features} if pair else {"ngram_range": (1, 2)}
        if name == "nb-bigrams":
            vectorizer, model, grid = CountVectorizer(binary=True, **options), MultinomialNB(), "alpha"
        else:
            vectorizer = TfidfVectorizer(sublinear_tf=True, **options)
            model, grid = LogisticRegression(solver="newton-cg", tol=1e-6, max_iter=1000), "C"
        x = vectorizer.fit_transform([t for t, k in zip(texts("train"), keep) if k])
        search = GridSearchCV(model, {grid: list(REFERENCES[name].grid)}, cv=GroupKFold(n_splits=5),
                              scoring="accuracy").fit(x, y, groups=groups)
        out = {"chosen": search.best_params_[grid]}
        for split in ("val", "test"):
            view = store[split]
            right = search.best_estimator_.predict(vectorizer.transform(texts(split))) == view.examples["label"]
            edited = view.examples["is_counterfactual"]
            both = right[view.pairs[:, 0]] & right[view.pairs[:, 1]]
            out[split] = [round(100 * right.mean(), 2), round(100 * right[~edited].mean(), 2),
                          round(100 * right[edited].mean(), 2), round(100 * both.mean(), 2)]
        return out


def ours(folder: Path) -> dict:
    found = collect_references(folder)[0]
    metrics = found["metrics"]
    out = {"chosen": found["reference"]["chosen"]}
    for split in ("val", "test"):
        s = metrics["splits"][split]
        out[split] = [s["all"]["accuracy"], s["original"]["accuracy"], s["edited"]["accuracy"],
                      metrics["consistency"][split]["all"]["consistency"]]
    return out


@pytest.mark.parametrize("kind, name, trained_on", covering(["text", "text_pair"], ["nb-bigrams", "logreg-tfidf"],
                                                          ["augmented", "original"]))
def test_a_reference_row_is_scikit_learn_fitted_directly(text_stores, tmp_path, kind, name, trained_on):
    keep_references(tmp_path, text_stores[kind], [(name, trained_on)], {}, {})
    assert ours(tmp_path) == sklearn_reference(text_stores[kind], name, trained_on == "original")


def test_the_pair_features_by_hand():
    assert pair_features("A cat sat on it\x1fthe dog sat") == [
        "p:cat", "p:sat", "p:on", "p:it", "h:the", "h:dog", "h:sat", "h:the_dog", "h:dog_sat",
        "new:the", "new:dog", "shared:sat"]


def test_a_reference_keeps_predictions_the_viewer_reads(text_stores, tmp_path):
    from cfbuild.predictions import read_predictions

    keep_references(tmp_path, text_stores["text"], [("nb-bigrams", "augmented")], {}, {})
    folder = tmp_path / "reference" / "nb-bigrams" / "augmented"
    with open_store(text_stores["text"]) as store:
        val = store["val"]
        page = read_predictions(folder / "predictions.json", store.digest, "val", len(val), len(val.pairs))
        right = np.array(page["ensemble"]) == np.array(store.class_names)[val.examples["label"]]
    assert round(100 * right.mean(), 2) == ours(tmp_path)["val"][0]
    assert page["correct"].count("both") == round(ours(tmp_path)["val"][3] * len(val.pairs) / 100)
    assert not list(folder.rglob("*.pkl")) and not list(folder.rglob("*.pt"))  # no fitted model is kept
    ok("cfbuild", ["view", text_stores["text"], "--split", "val", "--predictions", folder / "predictions.json",
                   "--out", tmp_path / "page.html"])
    assert (tmp_path / "page.html").stat().st_size > 0


def test_a_reference_record_from_elsewhere_is_checked(text_stores, tmp_path):
    from cfpairs.errors import UserError

    keep_references(tmp_path, text_stores["text"], [("nb-bigrams", "augmented")], {}, {})
    path = tmp_path / "reference" / "nb-bigrams" / "augmented" / "reference.json"
    record = json.loads(path.read_text())
    for key, value, said in (("reference", "magic", "reference"), ("kfold", {"accuracy": {"1": 140}}, "kfold"),
                             ("store_digest", "x", "store_digest")):
        path.write_text(json.dumps({**record, key: value}))
        with pytest.raises(UserError, match=said):
            read_reference(path.parent)


def test_a_table_shows_the_block_keeps_it_and_leaves_it_out_on_request(text_stores, tmp_path):
    store = text_stores["text"]
    table = tmp_path / "table"
    args = ["table", store, "--out", table, "--modes", "original,augmented", "--epochs", "2", "--jobs", "1"]
    shown = ok("cftrain", args).stdout
    rows = json.loads((table / "table.json").read_text())["rows"]
    references = [r for r in rows if r.get("block") == "reference"]
    assert [(r["reference"], r["trained_on"]) for r in references] == [
        ("nb-bigrams", "augmented"), ("nb-bigrams", "original"), ("logreg-tfidf", "augmented"),
        ("logreg-tfidf", "original")]
    assert references[0]["splits"]["val"]["all"]["accuracy"] == sklearn_reference(store, "nb-bigrams")["val"][0]
    line = next(l for l in shown.splitlines() if l.startswith("| Naive Bayes, binary uni+bigrams (with edited"))
    assert "(n=1)" in line and line.rstrip(" |").endswith("-")  # accuracy cells one fit each; no alignment
    assert shown.index("| *reference") > shown.index("| With edited data (augmentation)")
    record = table / "reference" / "nb-bigrams" / "augmented" / "reference.json"
    before = os.stat(record).st_mtime_ns
    again = ok("cftrain", args).stdout
    assert os.stat(record).st_mtime_ns == before and again == shown  # kept, not refitted
    assert "Naive Bayes" in ok("cftrain", ["collect", table]).stdout
    ok("cftrain", ["table", store, "--out", tmp_path / "none", "--modes", "augmented", "--epochs", "1",
                   "--no-reference"])
    rows = json.loads((tmp_path / "none" / "table.json").read_text())["rows"]
    assert [r["mode"] for r in rows] == ["augmented"] and not (tmp_path / "none" / "reference").exists()


def test_a_table_without_the_original_row_fits_references_like_augmentation_only(text_stores, tmp_path):
    ok("cftrain", ["table", text_stores["text_pair"], "--out", tmp_path / "t", "--modes", "augmented",
                   "--epochs", "1"])
    rows = json.loads((tmp_path / "t" / "table.json").read_text())["rows"]
    assert {(r["reference"], r["trained_on"]) for r in rows if r.get("block")} == {
        ("nb-bigrams", "augmented"), ("logreg-tfidf", "augmented")}


def test_vector_stores_have_no_reference_block(stores, tmp_path):
    ok("cftrain", ["table", stores["vector"], "--out", tmp_path / "t", "--modes", "augmented", "--epochs", "1"])
    assert not any(r.get("block") for r in json.loads((tmp_path / "t" / "table.json").read_text())["rows"])


def test_references_fill_the_transfer_columns(text_stores, tmp_path):
    from cfbuild.builders.transfer import build_transfer

    store = text_stores["text"]
    source = tmp_path / "other.jsonl"
    source.write_text("".join(json.dumps({"label": CLASSES.index(r["y"]), "text": r["t"]}) + "\n"
                              for r in reviews(15, 9)))
    build_transfer("yelp", str(source), store, tmp_path / "other.h5", sample=30)
    ok("cftrain", ["table", store, "--out", tmp_path / "t", "--modes", "augmented", "--epochs", "1",
                   "--transfer", f"other={tmp_path / 'other.h5'}"])
    rows = json.loads((tmp_path / "t" / "table.json").read_text())["rows"]
    found = next(r for r in rows if r.get("reference") == "nb-bigrams")["transfers"]["other"]["splits"]
    with open_store(tmp_path / "other.h5") as opened:
        texts, labels = list(opened["test"].examples["text"]), opened["test"].examples["label"]
    with open_store(store) as opened:
        train = opened["train"]
        vectorizer = CountVectorizer(ngram_range=(1, 2), binary=True)
        x = vectorizer.fit_transform(list(train.examples["text"]))
        chosen = sklearn_reference(store, "nb-bigrams")["chosen"]
        model = MultinomialNB(alpha=chosen).fit(x, train.examples["label"])
    expected = round(100 * (model.predict(vectorizer.transform(texts)) == labels).mean(), 2)
    assert found["test"]["all"] == {"n": 30, "accuracy": expected}
    assert "other (n=30)" in (tmp_path / "t" / "table.md").read_text()


@pytest.mark.e2e
def test_the_cad_imdb_naive_bayes_row_reads_what_the_issue_measured(tmp_path):
    cad = Path(os.environ.get("CFPAIRS_CAD_DIR", Path(__file__).parents[2] / "shared" / "data" / "cad"))
    if not (cad / "sentiment").is_dir():
        pytest.skip(f"the CAD release is not at {cad} (set CFPAIRS_CAD_DIR)")
    ok("cfbuild", ["imdb", "--cad-dir", cad, "--out", tmp_path / "imdb.h5"])
    keep_references(tmp_path, tmp_path / "imdb.h5", [("nb-bigrams", "augmented")], {}, {})
    # 89.2: CountVectorizer(ngram_range=(1, 2), binary=True) + MultinomialNB() on combined/train.tsv
    val = collect_references(tmp_path)[0]["metrics"]["splits"]["val"]["all"]["accuracy"]
    assert abs(val - 89.2) <= 1.0, val


def test_refused_without_scikit_learn(text_stores, tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def without_sklearn(name, *args, **kw):
        if name == "sklearn" or name.startswith("sklearn."):
            raise ImportError(name)
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", without_sklearn)
    refused("cftrain", ["table", text_stores["text"], "--out", tmp_path / "t", "--modes", "augmented",
                        "--epochs", "1"], "scikit-learn", "--no-reference")
