"""What an export carries beside its tables: the dataset card (README.md, the Hub's YAML header and
a body with counts and citations) and Croissant 1.1 metadata (croissant.json), validated with
mlcroissant offline and read back by `datasets` and `cfbuild import`; licences and citations
recorded at build time (a manifest's, --license/--citation, or "unknown" said plainly)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import h5py
import pytest
import yaml

from cfbuild.builders.table import build_import, build_table
from cfbuild.card import hf_license
from cfbuild.export import export_store
from cfpairs.api import PairStore
from tests.conftest import write_text_rows


def header_of(folder: Path) -> dict:
    text = (folder / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text[4:text.index("\n---", 4)])


def sources_of(store: Path) -> list:
    with h5py.File(store) as h5:
        return json.loads(h5.attrs["sources"])


@pytest.fixture(scope="module")
def licensed(tmp_path_factory):
    root = tmp_path_factory.mktemp("card")
    rows = write_text_rows(root / "rows.jsonl")
    build_table({"train": rows, "val": rows}, root / "s.h5", text_cols=["a"], label_col="y", pair_col="g",
                license="cc-by-4.0", citation="Doe, J. Good and bad films. 2026.")
    build_table({"train": rows}, root / "u.h5", text_cols=["a"], label_col="y", pair_col="g")
    return root


def test_build_records_each_sources_licence_and_citation(licensed):
    assert {(s["license"], s["citation"]) for s in sources_of(licensed / "s.h5")} == \
        {("cc-by-4.0", "Doe, J. Good and bad films. 2026.")}
    assert {(s["license"], s["citation"]) for s in sources_of(licensed / "u.h5")} == {("unknown", "unknown")}


def test_a_parquet_export_carries_its_card_and_croissant(licensed, tmp_path):
    out = tmp_path / "out"
    export_store(licensed / "s.h5", out, to="parquet")
    header = header_of(out)
    assert header["license"] == "cc-by-4.0" and header["task_categories"] == ["text-classification"]
    assert header["size_categories"] == ["n<1K"] and header["pretty_name"].startswith("table: ")
    configs = {c["config_name"]: c["data_files"] for c in header["configs"]}
    assert configs["default"] == [{"split": "train", "path": "train.parquet"}, {"split": "val", "path": "val.parquet"}]
    body = (out / "README.md").read_text()
    with PairStore(licensed / "s.h5") as store:
        pairs, rows = len(store["train"].pairs), len(store["train"])
        digest = store.digest
    assert f"| train | {rows} | {rows // 2} | {pairs} | 0 | edited {pairs} | 0 8, 1 8 |" in body
    assert "Doe, J. Good and bad films. 2026." in body and digest in body
    croissant = json.loads((out / "croissant.json").read_text())
    assert croissant["conformsTo"] == "http://mlcommons.org/croissant/1.1"
    files = {d["@id"]: d for d in croissant["distribution"] if d["@type"] == "cr:FileObject"}
    for name in ("train.parquet", "val.parquet", "pairs/train.parquet", "README.md", "store.json"):
        assert files[name]["sha256"] == hashlib.sha256((out / name).read_bytes()).hexdigest(), name
    assert croissant["license"] == "https://creativecommons.org/licenses/by/4.0/"
    assert croissant["rai:dataCollection"] and croissant["rai:dataLimitations"]


def test_mlcroissant_loads_it_and_reads_every_record(licensed, tmp_path):
    mlc = pytest.importorskip("mlcroissant")
    out = tmp_path / "out"
    export_store(licensed / "s.h5", out, to="parquet")
    dataset = mlc.Dataset(jsonld=str(out / "croissant.json"))
    assert not dataset.metadata.issues.errors, dataset.metadata.issues.report()
    with PairStore(licensed / "s.h5") as store:
        rows = sum(len(store[s]) for s in store.splits)
        pairs = sum(len(store[s].pairs) for s in store.splits)
        first = store["train"].pairs[0]
        ids = store["train"].examples["id"]
    assert sum(1 for _ in dataset.records("examples")) == rows
    records = list(dataset.records("pairs"))
    assert len(records) == pairs
    assert (records[0]["pairs/original_id"].decode(), records[0]["pairs/counterfactual_id"].decode()) == \
        (str(ids[first[0]]), str(ids[first[1]]))


def test_datasets_loads_the_folder_by_its_card(licensed, tmp_path):
    import datasets
    out = tmp_path / "out"
    export_store(licensed / "s.h5", out, to="parquet")
    datasets.disable_progress_bars()
    loaded = datasets.load_dataset(str(out))
    pairs = datasets.load_dataset(str(out), "pairs")
    with PairStore(licensed / "s.h5") as store:
        assert loaded["train"].num_rows == len(store["train"]) and pairs["val"].num_rows == len(store["val"].pairs)


def test_import_reads_the_card_back(licensed, tmp_path):
    out = tmp_path / "out"
    export_store(licensed / "s.h5", out, to="parquet")
    build_import(out, tmp_path / "again.h5")
    assert {(s["license"], s["citation"]) for s in sources_of(tmp_path / "again.h5")} == \
        {("cc-by-4.0", "Doe, J. Good and bad films. 2026.")}


def test_unknown_is_said_plainly_and_hf_gets_a_card_without_data_files(licensed, tmp_path):
    out = tmp_path / "hf"
    export_store(licensed / "u.h5", out, to="hf")
    header = header_of(out)
    assert header["license"] == "unknown" and "configs" not in header
    assert "Licence of this export: unknown" in (out / "README.md").read_text()
    mlc = pytest.importorskip("mlcroissant")
    assert not mlc.Dataset(jsonld=str(out / "croissant.json")).metadata.issues.errors


def test_licence_statements_map_to_the_hubs_ids():
    assert hf_license("Apache-2.0") == "apache-2.0" and hf_license("MIT (code and released features)") == "mit"
    assert hf_license("CC BY 4.0 (annotations, as VQA v2); COCO images under their own terms") == "cc-by-4.0"
    assert hf_license("See the VQA-HAT release") == "other" and hf_license("unknown") == "unknown"


@pytest.mark.e2e
def test_the_real_imdb_export_has_apache_and_loads_in_mlcroissant(tmp_path):
    cad = Path(os.environ.get("CFPAIRS_CAD_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "cad"))
    if not (cad / "sentiment").is_dir():
        pytest.skip("the CAD release is not here (CFPAIRS_CAD_DIR)")
    mlc = pytest.importorskip("mlcroissant")
    from cfbuild.builders.cad import build_imdb
    build_imdb(cad, tmp_path / "imdb.h5")
    export_store(tmp_path / "imdb.h5", tmp_path / "out", to="parquet")
    header = header_of(tmp_path / "out")
    assert header["license"] == "apache-2.0" and header["task_categories"] == ["text-classification"]
    assert not mlc.Dataset(jsonld=str(tmp_path / "out" / "croissant.json")).metadata.issues.errors
