"""A small public Python API over pair stores (`import cfpairs`), for projects that want pairs
without our trainer. Reads through `cfpairs.store`; region features are read per item, never
the whole file.

    import cfpairs
    with cfpairs.open_store("imdb.h5") as store:
        train = store["train"]
        train.examples["text"], train.examples["label"], train.pairs   # numpy
        loader = torch.utils.data.DataLoader(store.torch_dataset("train"), batch_size=32)
        for original, counterfactual in loader: ...
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property

import numpy as np

from cfpairs.arrays import group_roots
from cfpairs.check import check_store
from cfpairs.store import RegionFeatureReader, Store, read_dataset


class Columns(Mapping):
    """A split's example datasets as numpy columns, each read on first access (reading the labels
    does not read the texts); `shape(field)` without reading."""

    def __init__(self, view: "SplitView"):
        self._view, self._cache = view, {}

    def __getitem__(self, field: str) -> np.ndarray:
        if field not in self._cache:
            if field not in self._view._split.examples:
                raise KeyError(field)
            self._cache[field] = self._view._read(self._view._split.examples[field])
        return self._cache[field]

    def __iter__(self):
        self._view._store._open_file()
        return iter(self._view._split.examples)

    def __len__(self) -> int:
        return len(self._view._split.examples)

    def shape(self, field: str) -> tuple:
        return tuple(self._view._split.examples[field].shape)


class SplitView:
    """One split: `examples` (every example dataset as a numpy column, read when first used), `pairs`
    (P, 2) rows of (original, counterfactual), `pair_kinds` (P,), `pair_relations` (P,: flip or keep), `subsets` {name: rows}, `pair_ids` (N,)."""

    def __init__(self, store: Store, name: str):
        self.name = name
        self._store = store
        self._split = store.split(name)

    def __len__(self) -> int:
        return len(self._split)

    def _read(self, ds) -> np.ndarray:
        self._store._open_file()  # a closed store says so
        data = read_dataset(self._store.path, ds)
        return np.asarray(data, dtype=object) if data.dtype.kind == "O" else data

    @cached_property
    def examples(self) -> Columns:
        self._store._open_file()
        return Columns(self)

    @cached_property
    def pairs(self) -> np.ndarray:
        return self._read(self._split.pairs_index).astype(np.int64).reshape(-1, 2)

    @cached_property
    def pair_kinds(self) -> np.ndarray:
        return self._read(self._split.pairs_kind)

    @cached_property
    def pair_relations(self) -> np.ndarray:
        """(P,) each pair's relation: "flip" (the edit changes the label) or "keep" (it should not
        matter); every pair of a format 1 or 2 store flips."""
        if self._split.pairs_relation is None:
            return np.full(len(self.pairs), "flip", dtype=object)
        return np.asarray([v.decode() if isinstance(v, bytes) else str(v) for v in
                           self._read(self._split.pairs_relation)], dtype=object)

    @cached_property
    def subsets(self) -> dict:
        return {name: self._read(ds) for name, ds in self._split.subsets.items()}

    def row(self, index: int) -> dict:
        """Example `index` as {field: numpy value} (every example dataset)."""
        return {field: self.examples[field][index] for field in self.examples}

    def iter_pairs(self):
        """(original, counterfactual, kind) for every pair, each example a dict of its fields."""
        for (a, b), kind in zip(self.pairs, self.pair_kinds):
            yield self.row(int(a)), self.row(int(b)), str(kind)

    @cached_property
    def pair_ids(self) -> np.ndarray:
        """(N,) one id per pair group (an original with all its counterfactuals), numbered from 0
        in row order; -1 for rows in no pair."""
        roots = group_roots(len(self), self.pairs)
        paired = np.zeros(len(self), bool)
        paired[self.pairs.ravel()] = True
        unique_roots, ids = np.unique(roots[paired], return_inverse=True)
        out = np.full(len(self), -1, np.int64)
        out[paired] = ids
        return out


class PairStore:
    """A pair store opened for reading: `.splits`, `.class_names`, `store[split]`, `.torch_dataset`."""

    def __init__(self, path, check: bool = True, allow_external: bool = False):
        if check:  # the cheap part of `cfbuild verify`: a damaged store fails here
            check_store(path, allow_external=allow_external)
        self._store = Store(path, allow_external)
        self.path = self._store.path
        self._views: dict = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._store.close()

    task = property(lambda self: self._store.task)
    input_kind = property(lambda self: self._store.input_kind)
    label_kind = property(lambda self: self._store.label_kind)
    class_names = property(lambda self: self._store.class_names)
    vocab = property(lambda self: self._store.vocab)
    build = property(lambda self: self._store.build)
    sources = property(lambda self: self._store.sources)
    report = property(lambda self: self._store.report)
    digest = property(lambda self: self._store.digest)  # what the file claims (verify computes it)
    format_version = property(lambda self: self._store.format_version)
    splits = property(lambda self: self._store.splits)

    def feature_width(self) -> int | None:
        """Width of the input vectors (a vector store's x, a regions store's features); None for text."""
        return self._store.feature_width()

    def regions_info(self):
        """What /regions holds (`cfpairs.store.RegionsInfo`), without reading features; None without."""
        return self._store.regions_info()

    def feature_parts(self) -> tuple:
        """Where /regions/features' rows are read from (`cfpairs.structure.FeaturePart`s)."""
        return self._store.feature_parts()

    @cached_property
    def image_ids(self) -> np.ndarray | None:
        """/regions image id of each image row (regions stores), else None."""
        regions = self._store.regions
        return None if regions is None else read_dataset(self.path, regions["image_id"])

    def __getitem__(self, name: str) -> SplitView:
        self._store._open_file()  # a closed store says so
        if name not in self._views:
            self._views[name] = SplitView(self._store, name)
        return self._views[name]

    def torch_dataset(self, split: str, pairs: bool = True):
        """A torch Dataset: item i is pair i as (original, counterfactual) example dicts, or with
        `pairs=False` example i. Numbers come as tensors, texts as str; region stores add
        `features` (R, D), read for that item only, masked regions zeroed."""
        from cfpairs.torch_data import PairDataset  # torch only when asked for

        features = RegionFeatureReader(self.path, self._store.feature_parts()) \
            if self._store.regions is not None else None
        return PairDataset(self[split], pairs, features)


def open_store(path, check: bool = True, allow_external: bool = False) -> PairStore:
    """Open a pair store; `check` runs the cheap part of `cfbuild verify` first. A store that holds
    anything reaching other files is refused (StoreError), except region features left in source
    feature files as docs/STORE.md defines them, read only with `allow_external`."""
    return PairStore(path, check, allow_external)
