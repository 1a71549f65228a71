"""A store from elsewhere is data, never a door: what a reader refuses (docs/STORE.md, "What a
reader refuses, and why"), for every command and the Python API, before any data is read."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import cfpairs
from cfpairs.check import verify_store
from cfpairs.errors import StoreError
from cfpairs.store import Store
from tests.helpers import cli_main, snapshot, write_features_file, write_store

SECRET = "SECRET-cfpairs-7f3a"


def _secret_files(folder):
    """An HDF5 file and a plain file holding the secret: what a hostile store would read."""
    with h5py.File(folder / "other.h5", "w") as h5:
        h5["text"] = np.array([f"{SECRET} {i}" for i in range(4)], dtype=h5py.string_dtype())
        h5["label"] = np.array([1, 0, 1, 0], np.int64)
    (folder / "passwd").write_text((SECRET + " root:x:0:0 ") * 8)


def _replace(h5, path, make):
    del h5[path]
    make(h5)


def _vds_labels(h5):
    layout = h5py.VirtualLayout(shape=(4,), dtype="int64")
    layout[:] = h5py.VirtualSource("other.h5", "label", shape=(4,))
    h5["train/examples"].create_virtual_dataset("label", layout)


def _filter_plugin(h5):
    plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    plist.set_chunk((4,))
    plist.set_filter(307, h5py.h5z.FLAG_OPTIONAL, ())  # optional: HDF5 writes it without the plugin
    h5py.h5d.create(h5["train/examples"].id, b"extra", h5py.h5t.STD_I64LE, h5py.h5s.create_simple((4,)), dcpl=plist)


def _references(h5):
    refs = h5["train/examples"].create_dataset("refs", (1,), dtype=h5py.ref_dtype)
    refs[0] = h5["train/examples/label"].ref


HOSTILE = {  # name: (how the store is changed, what the one line names)
    "external link": (lambda h5: _replace(h5, "train/examples/text", lambda f: f["train/examples"].__setitem__(
        "text", h5py.ExternalLink("other.h5", "/text"))), "/train/examples/text is an external link to other.h5:/text"),
    "virtual dataset": (lambda h5: _replace(h5, "train/examples/label", _vds_labels),
                        "/train/examples/label is a virtual dataset over other.h5"),
    "external raw storage": (lambda h5: _replace(h5, "train/examples/text", lambda f: f["train/examples"].create_dataset(
        "text", shape=(4,), dtype="S32", external=[(str(f.filename).rsplit("/", 1)[0] + "/passwd", 0, 128)])),
        "/train/examples/text keeps its bytes in"),
    "soft link": (lambda h5: _replace(h5, "val/examples/label", lambda f: f["val/examples"].__setitem__(
        "label", h5py.SoftLink("/train/examples/label"))), "/val/examples/label is a soft link to /train/examples/label"),
    "self-referencing soft link": (lambda h5: h5.__setitem__("loop", h5py.SoftLink("/loop")),
                                   "/loop is a soft link to /loop"),
    "hard-link cycle": (lambda h5: h5["train/examples"].__setitem__("loop", h5["train"]), "has 2 hard links"),
    "second hard link": (lambda h5: _replace(h5, "val/examples/label", lambda f: f["val/examples"].__setitem__(
        "label", f["train/examples/label"])), "has 2 hard links"),
    "filter plugin": (_filter_plugin, "/train/examples/extra needs HDF5 filter 307"),
    "references": (_references, "/train/examples/refs has type"),
    "named datatype": (lambda h5: h5["train/examples"].__setitem__("kind", np.dtype("<i8")),
                       "/train/examples/kind is a datatype, not a group or a dataset"),
    "a name not UTF-8": (lambda h5: h5py.h5g.create(h5["train"].id, b"\xff\xfeodd"),
                         "a name in /train is not UTF-8 text"),
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A text store and a run trained on it (for `cftrain eval`)."""
    root = tmp_path_factory.mktemp("pristine")
    write_store(root / "s.h5", "text")
    result = CliRunner().invoke(cli_main("cftrain"), ["run", str(root / "s.h5"), "--out", str(root / "run"),
                                                      "--mode", "augmented", "--epochs", "1", "--device", "cpu"])
    assert result.exit_code == 0, result.stderr
    return root


def hostile_store(pristine, tmp_path, name):
    _secret_files(tmp_path)
    shutil.copy(pristine / "s.h5", tmp_path / "s.h5")
    with h5py.File(tmp_path / "s.h5", "r+") as h5:
        HOSTILE[name][0](h5)
    return tmp_path / "s.h5"


def _invoke(program, args):
    result = CliRunner().invoke(cli_main(program), [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("name", list(HOSTILE))
def test_every_reader_refuses_before_reading(pristine, tmp_path, name):
    store = hostile_store(pristine, tmp_path, name)
    fragment = HOSTILE[name][1]
    with pytest.raises(StoreError, match="What a reader refuses") as caught:
        cfpairs.open_store(store)
    assert fragment in str(caught.value) and SECRET not in str(caught.value)
    assert fragment in verify_store(store)
    code, out, err = _invoke("cfbuild", ["verify", store])
    assert (code, out) == (1, "") and err.startswith("FAILED: ") and fragment in err and len(err.splitlines()) == 1
    outputs = [tmp_path / "page.html", tmp_path / "tables", tmp_path / "run", tmp_path / "eval.json"]
    commands = [("cfbuild", ["inspect", store]), ("cfbuild", ["view", store, "--out", outputs[0]]),
                ("cfbuild", ["export", store, "--to", "parquet", outputs[1]]),
                ("cftrain", ["run", store, "--out", outputs[2], "--epochs", "1"]),
                ("cftrain", ["eval", pristine / "run", store, "--out", outputs[3]])]
    for program, args in commands:
        code, out, err = _invoke(program, args)
        assert code == 2, (program, args[0], code, err)
        assert len(err.splitlines()) == 1 and f"{program}: error:" in err and fragment in err, (args[0], err)
        assert SECRET not in out + err
    assert all(snapshot(path) is None for path in outputs), "an output was written"
    assert not list(tmp_path.glob(".*.part")), "a temporary output was left behind"


def test_a_digest_recomputed_over_a_hostile_store_does_not_make_it_pass(pristine, tmp_path):
    store = hostile_store(pristine, tmp_path, "external link")
    with h5py.File(store, "r+") as h5:  # the attacker's own digest, as the public algorithm computes it
        h5.attrs["content_digest"] = reference_digest(h5, follow_links=False)
    assert "is an external link" in verify_store(store)


# ---------------------------------------------------------------- the digest covers what is read


def reference_digest(h5: h5py.File, follow_links: bool = True) -> str:
    """docs/STORE.md's digest (format 2), written from the page alone: attributes, then datasets."""
    import hashlib
    entries = {}

    def add(name, obj):
        for key in obj.attrs:
            if (name, key) != ("", "content_digest"):
                entries[f"0@/{name + '/' if name else ''}{key}"] = (f"@/{name + '/' if name else ''}{key}",
                                                                   np.asarray(obj.attrs[key]))
        if isinstance(obj, h5py.Dataset):
            entries[f"1{name}"] = (name, obj[()])

    add("", h5)
    h5.visititems(add)
    sha = hashlib.sha256()
    for _, (name, value) in sorted(entries.items()):
        value = np.asarray(value)
        text = value.dtype.kind in "OUS"
        code = "str" if text else value.dtype.newbyteorder("<").str
        sha.update(f"{name}\0{code}\0{','.join(map(str, value.shape))}\0".encode())
        if text:
            for item in value.ravel():
                data = item if isinstance(item, bytes) else str(item).encode()
                sha.update(len(data).to_bytes(8, "little") + data)
        else:
            sha.update(np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<")).tobytes())
    return sha.hexdigest()


@pytest.mark.parametrize("kind", ["text", "text_pair", "vector"])
def test_the_digest_is_the_documented_one(tmp_path, kind):
    write_store(tmp_path / "s.h5", kind)
    with h5py.File(tmp_path / "s.h5", "r") as h5:
        assert h5.attrs["format_version"] == 3
        assert h5.attrs["content_digest"] == reference_digest(h5)


@pytest.mark.parametrize("attribute, value", [("class_names", json.dumps(["pos", "neg"])), ("task", "other"),
                                              ("build", json.dumps({"command": "mine"})), ("label_kind", "multiclass")])
def test_changed_attributes_fail_verify(tmp_path, attribute, value):
    write_store(tmp_path / "s.h5", "text")
    with h5py.File(tmp_path / "s.h5", "r+") as h5:
        h5.attrs[attribute] = value  # a swapped class order reverses every label's meaning
    assert "content_digest mismatch" in verify_store(tmp_path / "s.h5")


def test_a_format_1_store_still_opens_verifies_and_says_how_to_rebuild(tmp_path):
    from cfpairs.digest import data_digest
    write_store(tmp_path / "s.h5", "text")
    with h5py.File(tmp_path / "s.h5", "r+") as h5:  # what cfpairs 0.2 wrote: version 1, datasets-only digest
        h5.attrs["format_version"] = 1
        h5.attrs["content_digest"] = data_digest(h5)
    assert verify_store(tmp_path / "s.h5") is None
    code, out, err = _invoke("cfbuild", ["verify", tmp_path / "s.h5"])
    assert code == 0 and out == "ok\n" and "is format 1" in err and "test ... --force" in err
    with cfpairs.open_store(tmp_path / "s.h5") as store:
        assert store.format_version == 1 and len(store["train"]) == 4
    code, out, err = _invoke("cftrain", ["run", tmp_path / "s.h5", "--out", tmp_path / "run", "--mode", "augmented",
                                         "--epochs", "1"])
    assert code == 0 and "is format 1: its digest covers its datasets but not its attributes" in err


def test_view_checks_the_digest_of_what_it_shows(tmp_path):
    write_store(tmp_path / "s.h5", "text")
    with h5py.File(tmp_path / "s.h5", "r+") as h5:
        h5.attrs["class_names"] = json.dumps(["pos", "neg"])  # every label's meaning reversed
    code, _, err = _invoke("cfbuild", ["view", tmp_path / "s.h5", "--out", tmp_path / "p.html"])
    assert code == 2 and "content_digest mismatch" in err and not (tmp_path / "p.html").exists()


# ---------------------------------------------------------------- linked region features, when allowed


def linked_store(tmp_path):
    features = write_features_file(tmp_path / "feats.h5")
    write_store(tmp_path / "s.h5", "regions", features_file=tmp_path / "feats.h5",
                sources=[{"file": "feats.h5", "size": (tmp_path / "feats.h5").stat().st_size,
                          "sha256": snapshot(tmp_path / "feats.h5"), "manifest_id": None}])
    return tmp_path / "s.h5", features


def test_linked_features_need_allow_external_and_inspect_shows_where(tmp_path):
    store, features = linked_store(tmp_path)
    with pytest.raises(StoreError, match="external link to feats.h5:image_features .*allow_external=True"):
        cfpairs.open_store(store)
    code, _, err = _invoke("cfbuild", ["inspect", store])
    assert code == 2 and "pass --allow-external" in err
    code, out, err = _invoke("cfbuild", ["inspect", store, "--allow-external"])
    assert code == 0, err
    assert f"external link to {tmp_path / 'feats.h5'}:image_features" in out
    with cfpairs.open_store(store, allow_external=True) as opened:
        from cfpairs.store import RegionFeatureReader
        rows = RegionFeatureReader(opened.path, opened.feature_parts()).read(np.array([1, 0, 1]))
        np.testing.assert_array_equal(rows, features[[1, 0, 1]])
    assert verify_store(store, allow_external=True) is None


def test_verify_checks_the_linked_file_against_its_listed_sha256(tmp_path):
    store, _ = linked_store(tmp_path)
    with h5py.File(tmp_path / "feats.h5", "r+") as h5:
        h5["image_features"][0, 0, 0] += 1  # same size, other bytes
    assert "linked feature file" in verify_store(store, allow_external=True)
    assert "differs from the one the store was built with" in verify_store(store, allow_external=True)


@pytest.mark.parametrize("how, fragment", [
    ("absolute", "named relative to the store's folder"),
    ("external storage in the linked file", "keeps its bytes in"),
    ("link inside the linked file", "not a dataset reached without links"),
    ("virtual dataset over part of a file", "does not join whole files row by row"),
])
def test_linked_features_are_checked_like_the_store(tmp_path, how, fragment):
    store, _ = linked_store(tmp_path)
    _secret_files(tmp_path)
    with h5py.File(store, "r+") as h5:
        del h5["regions/features"]
        if how == "absolute":
            h5["regions/features"] = h5py.ExternalLink(str(tmp_path / "feats.h5"), "image_features")
        elif how == "external storage in the linked file":
            with h5py.File(tmp_path / "evil.h5", "w") as evil:
                evil.create_dataset("f", shape=(2, 3, 4), dtype="u1", external=[(str(tmp_path / "passwd"), 0, 24)])
            h5["regions/features"] = h5py.ExternalLink("evil.h5", "f")
        elif how == "link inside the linked file":
            with h5py.File(tmp_path / "evil.h5", "w") as evil:
                evil["f"] = h5py.ExternalLink("other.h5", "/text")
            h5["regions/features"] = h5py.ExternalLink("evil.h5", "f")
        else:
            layout = h5py.VirtualLayout(shape=(2, 3, 5), dtype="float32")
            layout[0:2, 0:2] = h5py.VirtualSource("feats.h5", "image_features", shape=(2, 3, 5))[:, 0:2]
            h5["regions"].create_virtual_dataset("features", layout)
    with pytest.raises(StoreError, match=fragment):
        Store(store, allow_external=True)


def test_every_command_takes_allow_external(tmp_path):
    """The reader's consent reaches training through the run options (a worker opens the store itself)."""
    from cftrain.presets import resolve
    from cftrain.train import run
    store, _ = linked_store(tmp_path)
    config = resolve("t", "regions", mode="gs", hidden=[4], epochs=1, batch_size=4, allow_external=True)
    metrics = run(store, tmp_path / "run", config)
    assert metrics["splits"]["train"]["all"]["n"] == 4
    assert json.loads((tmp_path / "run" / "config.json").read_text())["allow_external"] is True
    for args in (["view", store, "--out", tmp_path / "p.html"], ["export", store, "--to", "parquet", tmp_path / "x"]):
        assert _invoke("cfbuild", args)[0] == 2
        code, _, err = _invoke("cfbuild", args + ["--allow-external"])
        assert code == 0, err


def test_a_run_reads_linked_features_only_as_pinned(tmp_path, monkeypatch):
    """With --allow-external a run checks every linked file against the store's sources (as verify
    does), once per file version: a file changed since, or one the sources do not list, is refused."""
    from cftrain.presets import resolve
    from cftrain.train import run
    monkeypatch.setenv("CFPAIRS_CACHE_DIR", str(tmp_path / "cache"))
    store, _ = linked_store(tmp_path)
    config = resolve("t", "regions", mode="augmented", hidden=[4], epochs=1, batch_size=4, allow_external=True)
    run(store, tmp_path / "run", config)
    cache = json.loads((tmp_path / "cache" / "sha256.json").read_text())
    assert list(cache.values()) == [snapshot(tmp_path / "feats.h5")]  # hashed once, remembered
    with h5py.File(tmp_path / "feats.h5", "r+") as h5:
        h5["image_features"][0, 0, 0] += 1  # same size, other bytes, a new mtime
    with pytest.raises(StoreError, match="differs from the one the store was built with"):
        run(store, tmp_path / "run2", config)
    shutil.copy(tmp_path / "feats.h5", tmp_path / "other.h5")
    with h5py.File(store, "r+") as h5:
        del h5["regions/features"]
        h5["regions/features"] = h5py.ExternalLink("other.h5", "image_features")
    with pytest.raises(StoreError, match="other.h5 is not listed in the store's sources"):
        run(store, tmp_path / "run3", config)
