"""Builders share one config: the task, the tokens kept, the vocabulary, the label checks and the split
files are declared once (`cfbuild.protocol.TextOptions`, `SplitFiles`) with one default each, and
every store's build record says which builder code made it."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
from pathlib import Path

import pytest

from cfbuild.protocol import TextOptions, all_builders
from cfpairs.store import Store
from tests.helpers import ok

SHARED = {f.name: f for f in dataclasses.fields(TextOptions)}


@pytest.mark.parametrize("name", sorted(all_builders()))
def test_a_builder_declares_no_shared_option_of_its_own(name):
    """A builder taking --task, --max-tokens, --vocab-size or --allow inherits them: one declaration,
    one default (their defaults drifted: 32 tokens in table and snli, all in imdb)."""
    for field in dataclasses.fields(all_builders()[name].Options):
        if field.name in SHARED:
            assert field.metadata is SHARED[field.name].metadata, f"cfbuild {name} redeclares --{field.name}"


def test_text_builders_keep_every_token_by_default_and_record_what_they_resolved(tmp_path):
    long = " ".join(f"w{i}" for i in range(50))
    (tmp_path / "a.csv").write_text(f"g,text,label\n0,good {long},pos\n0,bad {long},neg\n")
    ok("cfbuild", ["table", "--file", tmp_path / "a.csv", "--text-col", "text", "--label-col", "label", "--pair-col",
                   "g", "--out", tmp_path / "s.h5"])
    with Store(tmp_path / "s.h5") as store:
        assert store.split("train").read("length").tolist() == [51, 51]
        build = store.build
    assert build["parameters"]["max_tokens"] is None  # as given
    assert build["settings"] == {"task": "table", "max_tokens": 0, "vocab_size": 20000}  # as resolved
    module = Path(inspect.getsourcefile(type(all_builders()["table"])))
    assert build["builder_sha256"] == hashlib.sha256(module.read_bytes()).hexdigest()


def test_a_build_that_follows_a_store_takes_its_settings(tmp_path):
    (tmp_path / "a.csv").write_text("g,text,label\n0,good film one two three,pos\n0,bad film,neg\n")
    ok("cfbuild", ["table", "--file", tmp_path / "a.csv", "--text-col", "text", "--label-col", "label", "--pair-col",
                   "g", "--out", tmp_path / "s.h5", "--max-tokens", "3", "--task", "mine"])
    (tmp_path / "o.tsv").write_text("Sentiment\tText\npos\tgood film one two three four\n")
    (tmp_path / "e.tsv").write_text("Sentiment\tText\nneg\tbad film one two three four\n")
    ok("cfbuild", ["aligned", "--file", tmp_path / "o.tsv", "--edited-file", tmp_path / "e.tsv", "--vocab-from",
                   tmp_path / "s.h5", "--out", tmp_path / "c.h5"])
    with Store(tmp_path / "c.h5") as store:
        assert store.task == "mine" and store.build["settings"]["max_tokens"] == 3
        assert store.split("test").read("length").tolist() == [3, 3]
        assert json.dumps(store.build).count("builder_sha256") == 1
