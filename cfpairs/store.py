"""Reading a pair store, format versions 1, 2 and 3 (docs/STORE.md). `Store` checks the root
attributes and what the file holds (`cfpairs.structure`: nothing that reaches other files) when it
opens a file, and reads datasets lazily (h5py, sliced on demand); every read that fails names the
file and the dataset. `RegionFeatureReader` reads region features by image rows in any process.
The writer is `cfpairs.writer` (re-exported here), the digest `cfpairs.digest`.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from cfpairs.digest import content_digest, is_string_dtype  # noqa: F401  (re-exported)
from cfpairs.jsontext import strict_loads
from cfpairs.errors import StoreError
from cfpairs.outputs import special_kind
from cfpairs.schema import FORMAT, INPUT_KINDS, LABEL_KINDS, READABLE_VERSIONS, RESERVED_GROUPS
from cfpairs.structure import FeaturePart, read_rows, walked
from cfpairs.writer import (LinkedFeatures, StoreWriter, describe_source,  # noqa: F401  (re-exported)
                            describe_source_stat)

def check_input_file(path: Path) -> None:
    """A store to read must be a regular file: h5py would block on a FIFO, read a device forever."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise StoreError(f"{path}: no such file") from None
    except OSError as exc:
        raise StoreError(f"{path}: cannot be read ({exc.strerror})") from None
    what = special_kind(info.st_mode)
    if what or not stat.S_ISREG(info.st_mode):
        raise StoreError(f"{path}: is a {what or 'folder'}, not a store file")


def read_dataset(path, ds: h5py.Dataset, rows=None) -> np.ndarray:
    """A dataset (or `rows` of it), strings as str; a failing read (a damaged chunk, a moved linked
    file) is a StoreError naming the file and the dataset."""
    try:
        view = ds.asstr() if is_string_dtype(ds.dtype) else ds
        return view[()] if rows is None else view[np.asarray(rows)]
    except (OSError, RuntimeError, ValueError, TypeError) as exc:
        raise StoreError(f"{path}: dataset {ds.name} cannot be read back ({' '.join(str(exc).split())[:160]})") \
            from None


def _member(path, group: h5py.Group, name: str):
    try:
        return group[name]
    except (KeyError, OSError, ValueError) as exc:
        where = f"{group.name.rstrip('/')}/{name}"
        missing = isinstance(exc, KeyError) and "doesn't exist" in str(exc)
        raise StoreError(f"{path}: {'dataset' if '/' in name or group.name != '/' else 'group'} {where} "
                         f"{'is missing' if missing else 'cannot be opened'}") from None


class Split:
    """One split, read lazily: `examples[field]` are h5py datasets; `read` names what fails."""

    def __init__(self, group: h5py.Group, path=None):
        self.name = group.name.strip("/")
        self.path = path or group.file.filename
        self.group = group
        self.examples = _member(self.path, group, "examples")
        self.pairs_index = _member(self.path, group, "pairs/index")
        self.pairs_kind = _member(self.path, group, "pairs/kind")
        # format 3: each pair's relation (flip or keep); formats 1 and 2 have none: every pair flips
        self.pairs_relation = _member(self.path, group, "pairs/relation") if "relation" in group["pairs"] else None
        self.subsets = dict(_member(self.path, group, "subsets").items()) if "subsets" in group else {}

    def __len__(self) -> int:
        return _member(self.path, self.examples, "id").shape[0]

    def read(self, field: str, rows=None) -> np.ndarray:
        return read_dataset(self.path, _member(self.path, self.examples, field), rows)


_ABSENT = object()  # an attribute the file does not have


def _attr_text(value):
    return value.decode() if isinstance(value, bytes) else value


class Store:
    """A pair store opened for reading. Refuses non-cfpairs files, future versions, root attributes
    of the wrong type, and anything a store may not hold (`cfpairs.structure`), each named; region
    features in other files only with `allow_external`."""

    def __init__(self, path, allow_external: bool = False):
        self.path = Path(path)
        self._read = {}  # root attributes and the split names, read once (the file is open read-only)
        check_input_file(self.path)
        try:
            self.h5 = h5py.File(self.path, "r")
        except (OSError, ValueError) as exc:
            raise StoreError(f"{self.path}: cannot open as HDF5 ({exc.__class__.__name__}: {exc})") from None
        try:
            self._check_format()
            self.layout = walked(self.h5, self.path, allow_external)
            self._check_attributes()
        except BaseException:
            self.h5.close()
            raise

    def _check_format(self) -> None:
        """A cfpairs store (its `format` attribute), before anything else is read."""
        try:
            found = _attr_text(self.h5.attrs.get("format"))
        except (UnicodeDecodeError, OSError, TypeError, ValueError):
            found = None
        if found != FORMAT:
            raise StoreError(f"{self.path}: not a cfpairs store (root attribute format="
                             f"{found if isinstance(found, str) else self.h5.attrs.get('format')!r})")

    def _check_attributes(self) -> None:
        version = self.attr("format_version")
        if not isinstance(version, (int, np.integer)) or isinstance(version, bool):
            raise StoreError(f"{self.path}: root attribute 'format_version' must be an integer, found {version!r}")
        if int(version) not in READABLE_VERSIONS:
            raise StoreError(f"{self.path}: format_version {int(version)} is not supported "
                             f"(this cfpairs reads versions {', '.join(map(str, READABLE_VERSIONS))}; upgrade cfpairs)")
        for name, known in (("input_kind", INPUT_KINDS), ("label_kind", LABEL_KINDS)):
            if self.attr(name) not in known:
                raise StoreError(f"{self.path}: root attribute {name!r} must be one of {', '.join(known)}, "
                                 f"found {self.h5.attrs.get(name)!r}")
        if not isinstance(self.attr("task"), str):
            raise StoreError(f"{self.path}: root attribute 'task' must be a string, "
                             f"found {self.h5.attrs.get('task')!r}")
        names = self.json_attr("class_names")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise StoreError(f"{self.path}: root attribute 'class_names' must be a JSON list of class names, "
                             f"found {type(names).__name__}")
        if self.attr("label_kind") == "binary" and len(names) != 2:
            raise StoreError(f"{self.path}: a binary store has 2 class names, this one {len(names):,}")
        seen = set()
        for name in names:
            if name in seen:
                raise StoreError(f"{self.path}: root attribute 'class_names' names {name[:40]!r} twice; each class "
                                 "has one name")
            seen.add(name)
        for name, kind in (("build", dict), ("sources", list)):
            value = self.json_attr(name, kind())
            if not isinstance(value, kind):
                raise StoreError(f"{self.path}: root attribute {name!r} must be a JSON "
                                 f"{'object' if kind is dict else 'list'}, found {type(value).__name__}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.h5.close()

    @property
    def is_open(self) -> bool:
        return bool(self.h5.id.valid)

    def _open_file(self) -> h5py.File:
        if not self.h5.id.valid:
            raise StoreError(f"{self.path}: the store is closed (open it again: cfpairs.open_store)")
        return self.h5

    def attr(self, name: str, default=None):
        h5 = self._open_file()
        key = ("attr", name)
        if key not in self._read:
            value = _attr_text(h5.attrs.get(name, _ABSENT))
            if not isinstance(value, (str, int, float, np.generic)) and value is not _ABSENT:
                return value  # an array: the caller gets its own
            self._read[key] = value
        value = self._read[key]
        return default if value is _ABSENT else value

    def json_attr(self, name: str, default=None):
        value = self.attr(name)
        if value is None:
            return default
        try:
            return strict_loads(value)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"{self.path}: root attribute {name!r} is not valid JSON "
                             f"({' '.join(str(exc).split())[:80]})") from None

    task = property(lambda self: self.attr("task"))
    input_kind = property(lambda self: self.attr("input_kind"))
    label_kind = property(lambda self: self.attr("label_kind"))
    class_names = property(lambda self: self.json_attr("class_names", []))
    build = property(lambda self: self.json_attr("build", {}))
    sources = property(lambda self: self.json_attr("sources", []))
    report = property(lambda self: self.json_attr("report", {}))  # the builder's report (optional)
    digest = property(lambda self: self.attr("content_digest"))  # what the file claims (verify computes it)
    format_version = property(lambda self: int(self.attr("format_version")))

    @property
    def splits(self) -> list[str]:
        """Split names: train, val, test first, then the extras in name order."""
        h5 = self._open_file()
        if "splits" not in self._read:
            names = [k for k in h5.keys() if k not in RESERVED_GROUPS and isinstance(h5.get(k), h5py.Group)]
            first = [s for s in ("train", "val", "test") if s in names]
            self._read["splits"] = first + sorted(set(names) - set(first))
        return list(self._read["splits"])

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise StoreError(f"{self.path}: no split {name!r} (splits: {', '.join(self.splits)})")
        return Split(self.h5[name], self.path)

    @property
    def vocab(self) -> list[str] | None:
        h5 = self._open_file()
        return list(read_dataset(self.path, _member(self.path, h5, "vocab"))) if "vocab" in h5 else None

    @property
    def regions(self) -> h5py.Group | None:
        h5 = self._open_file()
        return _member(self.path, h5, "regions") if "regions" in h5 else None

    def feature_width(self) -> int | None:
        """Width of the input vectors a model reads (a vector store's x, a regions store's
        features); None for text stores and for linked features that cannot be resolved."""
        if self.input_kind == "vector":
            return int(self.split(self.splits[0]).examples["x"].shape[-1])
        info = self.regions_info() if self.input_kind == "regions" else None
        return None if info is None or info.features_shape is None else int(info.features_shape[-1])

    def regions_info(self) -> "RegionsInfo | None":
        """What /regions holds, without reading features; None for stores without regions."""
        regions = self.regions
        if regions is None:
            return None
        external = self.layout.external
        if external is not None:
            shape, dtype, where = external.shape, external.dtype, external.describe()
        elif "features" in regions:
            features = regions["features"]
            shape, dtype, where = tuple(features.shape), str(features.dtype), "stored"
        else:
            raise StoreError(f"{self.path}: dataset /regions/features is missing")
        return RegionsInfo(int(_member(self.path, regions, "image_id").shape[0]),
                           tuple(_member(self.path, regions, "boxes").shape), shape, dtype, where)

    def feature_parts(self) -> tuple:
        """Where /regions/features' rows are read from: this file, or the checked linked files."""
        if self.layout.external is not None:
            return self.layout.external.parts
        info = self.regions_info()
        return (FeaturePart(self.path, "/regions/features", 0, info.features_shape[0], self.path.name),)


@dataclass(frozen=True)
class RegionsInfo:
    n_images: int
    boxes_shape: tuple            # (M, R, 4)
    features_shape: tuple         # (M, R, D)
    features_dtype: str
    features_where: str           # "stored", or how and where the features are linked (allow_external)


class RegionFeatureReader:
    """/regions/features of a store read by image rows, from the parts its Store resolved and
    checked (`Store.feature_parts`: HDF5 never follows a link for it). Each process opens the files
    itself (h5py handles must not cross a fork), so DataLoader workers can share one reader."""

    def __init__(self, store_path, parts: tuple):
        self.path = str(store_path)
        self.parts = tuple(parts)
        self._pid, self._datasets = None, {}

    def __getstate__(self):
        return {"path": self.path, "parts": self.parts, "_pid": None, "_datasets": {}}

    def _dataset(self, part: FeaturePart) -> h5py.Dataset:
        if self._pid != os.getpid():
            self._pid, self._datasets = os.getpid(), {}
        if part not in self._datasets:
            try:
                self._datasets[part] = h5py.File(part.file, "r")[part.dataset]
            except (OSError, KeyError) as exc:
                raise StoreError(f"{self.path}: /regions/features ({part.file}:{part.dataset}) cannot be opened "
                                 f"({' '.join(str(exc).split())[:160]})") from None
        return self._datasets[part]

    def read(self, image_rows: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
        """(n, R, D) float32 features of the given rows (repeats allowed, any order); regions where
        `keep` (n, R) is False are zeroed."""
        unique, inverse = np.unique(np.asarray(image_rows), return_inverse=True)
        try:
            if len(unique):
                block = read_rows(self.parts, unique, self._dataset)
            else:
                block = np.zeros((0,) + self._dataset(self.parts[0]).shape[1:], np.float32)
        except (OSError, RuntimeError) as exc:  # a damaged chunk, or a linked file changed underneath
            raise StoreError(f"{self.path}: /regions/features rows {unique[:3].tolist()}... cannot be read "
                             f"({' '.join(str(exc).split())[:160]})") from None
        out = np.asarray(block, dtype=np.float32)[inverse.reshape(-1)]
        if keep is not None:
            out[~keep] = 0  # numpy: ~10x faster here than torch's boolean index_put
        if not np.isfinite(out).all():  # as it is read: a features file may be gigabytes
            row = int(np.asarray(image_rows).reshape(-1)[np.flatnonzero(~np.isfinite(out).reshape(len(out), -1)
                                                                         .all(1))[0]])
            raise StoreError(f"{self.path}: /regions/features row {row} is not finite (NaN or infinity); region "
                             "features must be numbers")
        return out
