"""`cfbuild export`: a store as Hugging Face `datasets` tables (save_to_disk) or parquet files.

One row per example: `id`, `is_counterfactual`, `pair_id` (shared by an original and all its
counterfactuals; -1 when unpaired), `pair_kind` ("original" for a group's original, the pair's
kind for a counterfactual, "" when unpaired), the inputs (texts and token ids trimmed to their
length; vectors; for regions the question, `image_id` and the region mask, never the features),
the labels in the store's label kind (class names as a `ClassLabel` where they fit), and every
other example column as it is (renamed `source_<name>` where it would clash, e.g. a table's own
`pair_id`). `store.json` beside the tables keeps the store's attributes; parquet exports list the
pairs one per row in `pairs/<split>.parquet`; every export carries its dataset card (README.md)
and its Croissant 1.1 metadata (croissant.json), `cfbuild.card`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cfbuild.card import PAIRS_FOLDER, write_card_files
from cfpairs.api import PairStore, SplitView
from cfpairs.errors import UserError
from cfpairs.label_kinds import label_kind
from cfpairs.check import check_store
from cfpairs.outputs import Room, check_output, staged
from cfpairs.progress import Progress
from cfpairs.schema import TOKEN_FIELDS

FORMATS = ("hf", "parquet")


def _token_lists(tokens: np.ndarray, length: np.ndarray) -> list:
    return [row[:n].tolist() for row, n in zip(tokens, length)]


def pair_kind_column(view: SplitView) -> np.ndarray:
    kinds = np.full(len(view), "", dtype=object)
    if len(view.pairs):
        kinds[view.pairs[:, 0]] = "original"
        kinds[view.pairs[:, 1]] = view.pair_kinds
    return kinds


def reconstructed_pairs(pair_id: np.ndarray, is_counterfactual: np.ndarray) -> np.ndarray | None:
    """(P, 2) (original, counterfactual) rows, sorted, that `pair_id` and `is_counterfactual`
    describe: each group's one original with each of its counterfactuals. None when a group does
    not have exactly one original."""
    pair_id, is_cf = np.asarray(pair_id), np.asarray(is_counterfactual, bool)
    grouped = pair_id >= 0
    groups = int(pair_id.max(initial=-1)) + 1
    originals = np.flatnonzero(grouped & ~is_cf)
    if not np.array_equal(np.bincount(pair_id[originals], minlength=groups), np.ones(groups, np.int64)):
        return None
    original_of = np.empty(groups, np.int64)
    original_of[pair_id[originals]] = originals
    edits = np.flatnonzero(grouped & is_cf)
    pairs = np.stack([original_of[pair_id[edits]], edits], axis=1)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def split_table(store: PairStore, view: SplitView) -> tuple[dict, dict]:
    """(columns, datasets features) of one split."""
    from datasets import List, Value

    ex, names = view.examples, store.class_names
    pair_id = view.pair_ids  # groups; the pairs themselves (keep pairs between edited rows too): pairs/SPLIT
    cols = {"id": ex["id"].tolist(), "is_counterfactual": ex["is_counterfactual"].tolist(),
            "pair_id": pair_id.tolist(), "pair_kind": pair_kind_column(view).tolist()}
    feats = {"id": Value("string"), "is_counterfactual": Value("bool"), "pair_id": Value("int64"),
             "pair_kind": Value("string")}
    used = {"id", "is_counterfactual"}
    for prefix in TOKEN_FIELDS[store.input_kind]:
        cols[f"{prefix}text"] = ex[f"{prefix}text"].tolist()
        cols[f"{prefix}tokens"] = _token_lists(ex[f"{prefix}tokens"], ex[f"{prefix}length"])
        feats.update({f"{prefix}text": Value("string"), f"{prefix}tokens": List(Value("int32"))})
        used |= {f"{prefix}text", f"{prefix}tokens", f"{prefix}length"}
    if store.input_kind == "vector":
        cols["x"], feats["x"] = ex["x"].tolist(), List(Value("float32"))
        used.add("x")
    if store.input_kind == "regions":
        cols["image_id"] = store.image_ids[ex["image_row"]].tolist()
        cols["region_mask"] = ex["region_mask"].tolist()
        feats.update(image_id=Value("int64"), region_mask=List(Value("bool")))
        used |= {"image_row", "region_mask"}
    labels = label_kind(store.label_kind)
    label_cols, label_feats = labels.table_columns(ex, names)
    cols.update(label_cols)
    feats.update(label_feats)
    used |= set(labels.fields)
    for field in sorted(set(ex) - used):  # e.g. batch_id, answer_type: as they are
        column = ex[field]
        name = f"source_{field}" if field in cols else field  # a table's own pair_id column, say
        cols[name] = column.tolist()
        feats[name] = Value("string") if column.dtype == object else _value_of(column)
    return cols, feats


def _value_of(column: np.ndarray):
    from datasets import List, Value

    value = Value(str(column.dtype) if column.dtype != np.bool_ else "bool")
    return value if column.ndim == 1 else List(value)


def store_attributes(store: PairStore) -> dict:
    return {"format": "cfpairs", "format_version": store.format_version, "task": store.task, "input_kind": store.input_kind,
            "label_kind": store.label_kind, "class_names": store.class_names, "content_digest": store.digest,
            "build": store.build, "sources": store.sources, "splits": store.splits, "vocab": store.vocab}


def export_store(store_path, out_dir, to: str = "hf", force: bool = False, allow_external: bool = False) -> dict:
    """Write the tables into `out_dir` (staged: renamed when complete); returns rows per split. The
    store is verified first (its digest recomputed): tables made for sharing carry only what the
    store's digest vouches for."""
    import datasets

    if to not in FORMATS:
        raise UserError(f"--to {to}: choose from {', '.join(FORMATS)}")
    check_output(out_dir, "export", force, inputs=[store_path])
    check_store(store_path, digest=True, allow_external=allow_external)
    datasets.disable_progress_bars()
    with staged(out_dir, "export", force, inputs=[store_path]) as tmp, \
            PairStore(store_path, check=False, allow_external=allow_external) as store:
        tables = {}
        with Progress(len(store.splits), f"export {Path(store_path).name}", unit="splits") as bar:
            for name in store.splits:
                cols, feats = split_table(store, store[name])
                tables[name] = datasets.Dataset.from_dict(cols, features=datasets.Features(feats))
                bar.update()
        room = Room(Path(out_dir))
        for table in tables.values():  # Arrow aborts the process on a failed write: check first
            room.ensure(table.data.nbytes)
        files, pair_files = {}, {}
        if to == "hf":
            datasets.DatasetDict(tables).save_to_disk(str(tmp))
            datasets.DatasetDict({n: pairs_table(store[n]) for n in tables}).save_to_disk(str(Path(tmp) / PAIRS_FOLDER))
        else:
            (Path(tmp) / PAIRS_FOLDER).mkdir()
            for name, table in tables.items():
                files[name], pair_files[name] = f"{name}.parquet", f"{PAIRS_FOLDER}/{name}.parquet"
                table.to_parquet(str(Path(tmp) / files[name]))
                pairs_table(store[name]).to_parquet(str(Path(tmp) / pair_files[name]))
        (Path(tmp) / "store.json").write_text(json.dumps(store_attributes(store), indent=2, allow_nan=False))
        write_card_files(store, Path(tmp), to, files, pair_files)
    return {name: len(table) for name, table in tables.items()}


def pairs_table(view: SplitView):
    """One row per pair: the ids of its two rows (the one edited, its edit), its kind and relation
    (flip or keep): what `cfbuild import` reads the pairs back from."""
    import datasets

    ids = view.examples["id"]
    return datasets.Dataset.from_dict(
        {"original_id": [str(ids[a]) for a, _ in view.pairs], "counterfactual_id": [str(ids[b]) for _, b in view.pairs],
         "kind": [str(k) for k in view.pair_kinds], "relation": [str(r) for r in view.pair_relations]},
        features=datasets.Features({k: datasets.Value("string")
                                    for k in ("original_id", "counterfactual_id", "kind", "relation")}))
