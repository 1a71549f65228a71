"""JSON from elsewhere is read strictly: a key given twice in one object (the last would win), NaN or
Infinity, and nesting deeper than Python recurses are refused with one line naming the file, in run
folders, predictions pages, slurm.json and a store's JSON attributes."""

from __future__ import annotations

import json
import shutil

import h5py
import pytest

from cfpairs.errors import StoreError
from cfpairs.jsontext import strict_loads
from tests.helpers import ok, refused


@pytest.mark.parametrize("text, said", [('{"a": 1, "a": 2}', "key 'a' given twice"),
                                        ('{"a": {"b": 1, "b": 1}}', "key 'b' given twice"),
                                        ('[NaN]', "NaN is not a JSON number"),
                                        ("[" * 100000 + "]" * 100000, "nested too deeply")])
def test_strict_loads_refuses(text, said):
    with pytest.raises(ValueError, match=said):
        strict_loads(text)
    assert strict_loads('{"a": [1, {"b": 2}]}') == {"a": [1, {"b": 2}]}


def test_a_metrics_file_with_a_key_twice_is_refused_not_read_as_its_last_value(work, tmp_path):
    """A GS row read 54.5 from one key and 79.5 from a second one: never believed."""
    shutil.copytree(work / "toy-run", tmp_path / "runs" / "run")
    path = tmp_path / "runs" / "run" / "metrics.json"
    text = path.read_text()
    key = '"best_epoch": '
    path.write_text(text.replace(key, f'{key}1, {key}', 1))
    refused("cftrain", ["collect", tmp_path / "runs", "--view", "table"], "metrics.json", "given twice")


def test_a_symlinked_slurm_json_is_refused_like_any_run_file(work, tmp_path):
    from cfpairs.errors import UserError
    from cftrain.slurm import SlurmLauncher

    (tmp_path / "elsewhere.json").write_text(json.dumps({"runs": {}}))
    (tmp_path / "slurm.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(UserError, match="not a regular file"):
        SlurmLauncher._read_state(tmp_path / "slurm.json")
    (tmp_path / "dup.json").write_text('{"runs": {}, "runs": {"x": {"job_id": "1", "attempts": 1}}}')
    with pytest.raises(UserError, match="given twice"):
        SlurmLauncher._read_state(tmp_path / "dup.json")


def test_a_store_attribute_nested_too_deeply_or_with_a_key_twice_is_a_store_error(work, tmp_path):
    from cfpairs.store import Store

    for value, said in (("[" * 50000 + "]" * 50000, "nested too deeply"), ('{"a": 1, "a": 2}', "given twice")):
        shutil.copy(work / "text.h5", tmp_path / "s.h5")
        with h5py.File(tmp_path / "s.h5", "r+") as h5:
            h5.attrs["build"] = value
        with pytest.raises(StoreError, match=said), Store(tmp_path / "s.h5") as store:
            store.build
    refused("cfbuild", ["inspect", tmp_path / "s.h5"], "build", "given twice")


def test_a_predictions_page_with_a_key_twice_is_refused(work, tmp_path):
    page = tmp_path / "p.json"
    page.write_text('{"kind": "predictions", "kind": "predictions"}')
    refused("cfbuild", ["view", work / "text.h5", "--predictions", page, "--out", tmp_path / "v.html"],
            "--predictions", "given twice")
