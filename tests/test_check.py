"""`verify` and `inspect`: corruption is caught, summaries count what is there."""

import json

import h5py

from cfpairs.check import summarize, verify_store
from cfpairs.store import Store, content_digest
from tests.helpers import run_cli, write_store


def _flip_byte_in_chunk(path, dataset):
    with h5py.File(path, "r") as h5:
        info = h5[dataset].id.get_chunk_info(0)
    offset = info.byte_offset + info.size // 2
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0xFF]))


def test_verify_ok_then_flipped_byte_exits_1(tmp_path):
    path = tmp_path / "s.h5"
    write_store(path, "text")
    ok = run_cli("cli.cfbuild", "verify", str(path))
    assert (ok.returncode, ok.stdout.strip()) == (0, "ok")
    _flip_byte_in_chunk(path, "train/examples/tokens")
    bad = run_cli("cli.cfbuild", "verify", str(path))
    assert bad.returncode == 1
    assert "/train/examples/tokens" in bad.stderr and bad.stdout == ""


def test_verify_names_a_broken_invariant_even_with_a_fresh_digest(tmp_path):
    path = tmp_path / "s.h5"
    write_store(path, "vector")
    with h5py.File(path, "a") as h5:  # make pair 0 join equal labels, then re-seal the digest
        h5["train/examples/label"][1] = 0
        h5.attrs["content_digest"] = content_digest(h5)
    problem = verify_store(path)
    assert "/train/pairs/index" in problem and "same label" in problem


def test_verify_catches_digest_mismatch_and_missing_attribute(tmp_path):
    path = tmp_path / "s.h5"
    write_store(path, "vector")
    with h5py.File(path, "a") as h5:
        h5["train/examples/x"][0, 0] = 42.0
    assert "content_digest mismatch" in verify_store(path)
    with h5py.File(path, "a") as h5:
        del h5.attrs["sources"]
    assert "'sources' is missing" in verify_store(path)


def test_inspect_counts(tmp_path):
    path = tmp_path / "s.h5"
    write_store(path, "text")
    with Store(path) as store:
        s = summarize(store)
    train = s["splits"]["train"]
    assert (train["examples"], train["originals"], train["counterfactuals"]) == (4, 2, 2)
    assert train["pairs"] == {"edited": 2} and train["subsets"] == {"hard": 2}
    assert train["labels"] == {"neg": 2, "pos": 2}
    out = run_cli("cli.cfbuild", "inspect", str(path), "--json")
    assert json.loads(out.stdout)["splits"]["val"]["pairs"] == {"edited": 1}
    table = run_cli("cli.cfbuild", "inspect", str(path)).stdout.splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in table if line.startswith(("train ", "val "))}
    # split, examples, originals, counterfactuals, then pairs by kind
    assert rows["train"] == ["4", "2", "2", "edited", "2"]
    assert rows["val"][3:] == ["edited", "1"] and rows["val"][:3] == [str(s["splits"]["val"][k]) for k in
                                                                      ("examples", "originals", "counterfactuals")]
    assert "labels train: neg 2, pos 2; subset hard: 2 rows" in table
    assert f"digest   {s['content_digest']}" in table


def test_verify_against_a_digest_published_elsewhere(tmp_path):
    """The digest inside the file detects damage; a store changed on purpose, its digest recomputed,
    still verifies by itself: only --digest with the published value tells it from the original."""
    path = tmp_path / "s.h5"
    write_store(path, "text")
    with Store(path) as store:
        published = store.digest
    shown = run_cli("cli.cfbuild", "verify", str(path), "--digest", published.upper())
    assert (shown.returncode, shown.stdout.strip()) == (0, f"ok (content digest {published}, as given)")
    with h5py.File(path, "r+") as h5:  # a tamperer swaps the first pair's labels and recomputes the digest
        labels = h5["train/examples/label"]
        labels[0:2] = labels[0:2][::-1].copy()
        h5.attrs["content_digest"] = content_digest(h5, version=int(h5.attrs["format_version"]))
    assert run_cli("cli.cfbuild", "verify", str(path)).returncode == 0
    caught = run_cli("cli.cfbuild", "verify", str(path), "--digest", published)
    assert caught.returncode == 1 and "is not the one given by --digest" in caught.stderr
    refused = run_cli("cli.cfbuild", "verify", str(path), "--digest", "12ab")
    assert refused.returncode == 2 and "--digest" in refused.stderr and "64 hexadecimal" in refused.stderr
