"""`cfbuild table` on users' files, and `cfbuild transfer` presets on local files in each layout."""

import json

import pytest

from cfbuild.builders.table import build_table
from cfbuild.builders.transfer import build_transfer
from cfpairs.errors import UserError
from cfpairs.store import Store
from tests.helpers import run_cli
from tests.cad_fixtures import mini_imdb, mini_snli
from cfbuild.builders.cad import build_imdb, build_snli


def test_table_csv_groups_by_pair_id_with_original_column(tmp_path):
    (tmp_path / "t.csv").write_text(
        "pid,text,label,is_orig\n"
        "a,\"great film, loved it\",pos,0\n"
        "a,\"awful film, hated it\",neg,1\n"
        "b,fine story,pos,1\n"
        "b,poor story,neg,0\n"
        "b,weak story,neg,0\n"
        "c,lonely row,neg,1\n")
    report = build_table({"train": tmp_path / "t.csv"}, tmp_path / "s.h5", text_cols=["text"], label_col="label",
                         pair_col="pid", original_col="is_orig")
    with Store(tmp_path / "s.h5") as store:
        train = store.split("train")
        assert store.class_names == ["neg", "pos"] and store.input_kind == "text"
        assert train.read("text").tolist() == ["great film, loved it", "awful film, hated it", "fine story",
                                               "poor story", "weak story", "lonely row"]  # the file's order
        assert train.read("is_counterfactual").tolist() == [True, False, False, True, True, False]
        assert train.pairs_index[()].tolist() == [[1, 0], [2, 3], [2, 4]]
        assert train.read("id")[1] == "t.csv:3"
    assert "1 groups have no edit" in report["splits"]["train"]["notes"][0]


def test_table_jsonl_text_pair_with_val_file(tmp_path):
    rows = [{"g": 1, "p": "a dog runs", "h": "an animal moves", "y": "0"},
            {"g": 1, "p": "a dog sleeps", "h": "an animal moves", "y": "2"}]
    for name in ("train", "val"):
        (tmp_path / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    build_table({"train": tmp_path / "train.jsonl", "val": tmp_path / "val.jsonl"}, tmp_path / "s.h5",
                text_cols=["p", "h"], label_col="y", pair_col="g")
    with Store(tmp_path / "s.h5") as store:
        assert store.input_kind == "text_pair" and store.splits == ["train", "val"]
        assert store.split("val").read("hypothesis_text").tolist() == ["an animal moves"] * 2
        assert store.split("val").pairs_index[()].tolist() == [[0, 1]]


def test_table_bad_input(tmp_path):
    (tmp_path / "t.tsv").write_text("pid\ttext\tlabel\na\tx y\tpos\na\tx z\tneg\n")
    (tmp_path / "v.tsv").write_text("pid\ttext\tlabel\na\tx y\tpos\na\tx z\tmaybe\n")
    result = run_cli("cli.cfbuild", "table", "--file", str(tmp_path / "t.tsv"), "--file-val", str(tmp_path / "v.tsv"),
                     "--text-col", "text", "--label-col", "label", "--pair-col", "pid", "--out", str(tmp_path / "s.h5"))
    assert result.returncode == 2 and "v.tsv: line 3: unknown label 'maybe'" in result.stderr
    result = run_cli("cli.cfbuild", "table", "--file", str(tmp_path / "t.tsv"), "--text-col", "body",
                     "--label-col", "label", "--pair-col", "pid", "--out", str(tmp_path / "s.h5"))
    assert result.returncode == 2 and "missing column(s) 'body'" in result.stderr
    assert not (tmp_path / "s.h5").exists()


def test_imdb_and_table_presets_agree(tmp_path):
    """`imdb` is a preset over the table machinery: the same rows give the same tokens."""
    cad = mini_imdb(tmp_path)
    build_imdb(cad, tmp_path / "imdb.h5", allow_unverified=True, splits=["train"])
    (tmp_path / "flat.tsv").write_text("Sentiment\tText\tbatch_id\n" + "".join(
        f"{s}\t{t}\t{b}\n" for s, t, b in [("Negative", "A dull, boring film.<br /><br />Skip it.", "1"),
                                           ("Positive", "A bright, gripping film.<br /><br />See it.", "1")]))
    build_table({"train": tmp_path / "flat.tsv"}, tmp_path / "t.h5", text_cols=["Text"], label_col="Sentiment",
                pair_col="batch_id")
    with Store(tmp_path / "imdb.h5") as a, Store(tmp_path / "t.h5") as b:
        words = lambda s, r: [s.vocab[t] for t in s.split("train").read("tokens")[r][: s.split("train").read("length")[r]]]
        assert words(a, 0) == words(b, 0) and words(a, 1) == words(b, 1)


LAYOUTS = {
    "amazon": ("csv", "label,title,content\n" + "".join(f"{i % 2},Title {i},good stuff {i}\n" for i in range(30))),
    "yelp": ("jsonl", "".join(json.dumps({"label": i % 2, "text": f"bad food {i}"}) + "\n" for i in range(30))),
    "semeval": ("tsv", "text\tlabel\n" + "".join(f"tweet good {i}\t{i % 3}\n" for i in range(30))),
}


@pytest.mark.parametrize("preset", sorted(LAYOUTS))
def test_transfer_presets_on_local_files(tmp_path, preset):
    cad = mini_imdb(tmp_path)
    build_imdb(cad, tmp_path / "imdb.h5", allow_unverified=True, splits=["train"])
    suffix, content = LAYOUTS[preset]
    (tmp_path / f"src.{suffix}").write_text(content)
    report = build_transfer(preset, str(tmp_path / f"src.{suffix}"), tmp_path / "imdb.h5", tmp_path / "x.h5",
                            sample=12, seed=1)
    with Store(tmp_path / "x.h5") as store, Store(tmp_path / "imdb.h5") as trained:
        test = store.split("test")
        assert store.splits == ["test"] and store.vocab == trained.vocab and len(test) == 12
        ids = [int(i.split(":")[1]) for i in test.read("id")]
        labels = test.read("label").tolist()
        if preset == "semeval":  # neutral (1) dropped, positive (2) -> 1
            assert all(i % 3 != 1 for i in ids) and labels == [int(i % 3 == 2) for i in ids]
            assert report["dropped_labels"] == 10
        else:
            assert labels == [i % 2 for i in ids]
        if preset == "amazon":
            assert test.read("text")[0] == f"Title {ids[0]} good stuff {ids[0]}"
    build_transfer(preset, str(tmp_path / f"src.{suffix}"), tmp_path / "imdb.h5", tmp_path / "y.h5", sample=12, seed=1)
    assert Store(tmp_path / "x.h5").digest == Store(tmp_path / "y.h5").digest


def test_transfer_multinli_uses_text_pairs(tmp_path):
    cad = mini_snli(tmp_path)
    build_snli(cad, tmp_path / "snli.h5", allow_unverified=True)
    (tmp_path / "mnli.jsonl").write_text("".join(
        json.dumps({"premise": f"a man {i}", "hypothesis": "a person", "label": i % 3}) + "\n" for i in range(9)))
    build_transfer("multinli", str(tmp_path / "mnli.jsonl"), tmp_path / "snli.h5", tmp_path / "m.h5", sample=100)
    with Store(tmp_path / "m.h5") as store:
        assert store.input_kind == "text_pair" and store.split("test").read("label").tolist() == [i % 3 for i in range(9)]
    with pytest.raises(UserError, match="cannot give the vocabulary"):
        build_transfer("yelp", str(tmp_path / "mnli.jsonl"), tmp_path / "snli.h5", tmp_path / "z.h5")


def test_transfer_hub_name_offline_is_a_clear_error(tmp_path):
    cad = mini_imdb(tmp_path)
    build_imdb(cad, tmp_path / "imdb.h5", allow_unverified=True, splits=["train"])
    with pytest.raises(UserError, match="yelp_polarity|not the preset"):
        build_transfer("yelp", "not_a_hub_name", tmp_path / "imdb.h5", tmp_path / "x.h5")


def test_transfer_hub_path_calls_load_dataset_with_the_preset(tmp_path, monkeypatch):
    import datasets

    calls, real_load = [], datasets.load_dataset

    def fake_load(*args, **kwargs):
        if args[0] in ("csv", "json"):  # the local tables of the mini release
            return real_load(*args, **kwargs)
        calls.append((args, kwargs))
        return datasets.Dataset.from_dict({"text": ["good", "bad", "ok"], "label": [0, 1, 2]})

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    cad = mini_imdb(tmp_path)
    build_imdb(cad, tmp_path / "imdb.h5", allow_unverified=True, splits=["train"])
    build_transfer("semeval", "tweet_eval", tmp_path / "imdb.h5", tmp_path / "x.h5")
    assert calls == [(("tweet_eval", "sentiment"), {"split": "test"})]
    with Store(tmp_path / "x.h5") as store:
        assert store.split("test").read("label").tolist() == [0, 1]
        assert store.sources[0]["file"] == "hub:tweet_eval/sentiment/test"


def test_eval_refuses_a_damaged_or_old_checkpoint(tmp_path):
    import torch
    from click.testing import CliRunner
    from cli.cftrain import main as cftrain

    from cfbuild.builders.toy import build_toy
    from cftrain.presets import resolve
    from cftrain.train import run

    store, run_dir = tmp_path / "toy.h5", tmp_path / "run"
    build_toy(store, n=20)
    run(store, run_dir, resolve("toy", mode="augmented", epochs=1))
    for content, fragment in ((b"not a checkpoint", "not a readable checkpoint"),
                              (None, "no model constructor arguments")):
        if content is None:
            torch.save({"members": [], "model": "mlp"}, run_dir / "model.pt")
        else:
            (run_dir / "model.pt").write_bytes(content)
        result = CliRunner().invoke(cftrain, ["eval", str(run_dir), str(store)])
        assert result.exit_code == 2, result.output
        assert fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_run_evaluates_on_a_transfer_set_in_its_vocabulary(tmp_path):
    """The store signature admits a transfer set built with --vocab-from the run's store."""
    from cftrain.presets import resolve
    from cftrain.evaluate import evaluate_run
    from cftrain.train import run

    cad = mini_imdb(tmp_path)
    build_imdb(cad, tmp_path / "imdb.h5", allow_unverified=True)
    run(tmp_path / "imdb.h5", tmp_path / "run", resolve("imdb", "text", mode="gs", epochs=2, ensemble=2,
                                                       ngram_buckets=64))  # the preset's model, small
    suffix, content = LAYOUTS["yelp"]
    (tmp_path / f"src.{suffix}").write_text(content)
    build_transfer("yelp", str(tmp_path / f"src.{suffix}"), tmp_path / "imdb.h5", tmp_path / "yelp.h5", sample=12)
    result = evaluate_run(tmp_path / "run", tmp_path / "yelp.h5", device="cpu")
    assert list(result["splits"]) == ["test"] and result["splits"]["test"]["all"]["n"] == 12
    import torch
    from cftrain.rundir import RunDir
    members = RunDir(tmp_path / "run").load_members()
    with Store(tmp_path / "yelp.h5") as store:  # the ensemble by hand: mean logit > 0 against the labels
        test = store.split("test")
        batch = {"tokens": torch.as_tensor(test.read("tokens")).long(), "length": torch.as_tensor(test.read("length"))}
        labels = test.read("label")
    with torch.no_grad():
        logit = torch.stack([m.eval()(batch) for m in members]).mean(0)[:, 0].numpy()
    expected = round(100 * float(((logit > 0).astype(int) == labels).mean()), 2)
    assert result["splits"]["test"]["all"]["accuracy"] == expected
