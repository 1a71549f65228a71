"""The cfpairs pair store, format version 1 (README: "The pair store").

This module (with store_schema.py and store_rules.py) is the only code that knows the
HDF5 layout. `StoreWriter` validates as it writes and publishes the file by an atomic
rename; `Store` reads lazily (h5py datasets, sliced on demand); `RegionFeatureReader`
reads region features by image rows in any process.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from cfpairs.errors import StoreError, UserError
from cfpairs.staging import check_output_file, part_prefix, public_mode, remove_stale_parts
from cfpairs.rules import validate_split
from cfpairs.schema import FORMAT, FORMAT_VERSION, INPUT_KINDS, LABEL_KINDS, RESERVED_GROUPS, STR

def _as_column(name: str, values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind in "US" or (arr.dtype.kind == "O" and name != "x"):
        return np.array([str(v) if not isinstance(v, bytes) else v.decode() for v in arr.ravel()],
                        dtype=object).reshape(arr.shape)
    return arr


def is_string_dtype(dtype) -> bool:
    return dtype.kind in "OUS" or h5py.check_string_dtype(dtype) is not None


# ---------------------------------------------------------------- digest


def content_digest(h5: h5py.File) -> str:
    """sha256 over the datasets stored in the file, in sorted path order.

    Per dataset: path, NUL, dtype ('str' or little-endian numpy code), NUL, shape
    as comma-separated ints, NUL, then the elements in C order (numbers as
    little-endian bytes; strings as an 8-byte little-endian length + UTF-8).
    External links and virtual datasets are skipped: `sources` pins their files.
    """
    names: list[str] = []

    def collect(name, obj):
        if isinstance(obj, h5py.Dataset) and not obj.is_virtual:
            names.append(name)

    h5.visititems(collect)
    digest = hashlib.sha256()
    for name in sorted(names):
        try:
            _digest_dataset(digest, name, h5[name])
        except (OSError, RuntimeError) as exc:  # e.g. a chunk failing its Fletcher-32 checksum
            raise StoreError(f"{h5.filename}: dataset /{name} cannot be read back ({exc})") from None
    return digest.hexdigest()


def _digest_dataset(digest, name: str, ds: h5py.Dataset) -> None:
    text = is_string_dtype(ds.dtype)
    code = "str" if text else ds.dtype.newbyteorder("<").str
    digest.update(f"{name}\0{code}\0{','.join(map(str, ds.shape))}\0".encode())
    if ds.shape == ():
        blocks = [np.asarray(ds[()])[None]]
    else:
        row_bytes = max(1, ds.dtype.itemsize * int(np.prod(ds.shape[1:], dtype=np.int64)))
        step = max(1, (1 << 23) // row_bytes)
        blocks = (ds[start:start + step] for start in range(0, ds.shape[0], step))
    for block in blocks:
        if text:
            parts = [s if isinstance(s, bytes) else str(s).encode() for s in np.asarray(block).ravel()]
            digest.update(b"".join(len(p).to_bytes(8, "little") + p for p in parts))
        else:
            digest.update(np.ascontiguousarray(block, dtype=ds.dtype.newbyteorder("<")).tobytes())


# ---------------------------------------------------------------- writer


@dataclass(frozen=True)
class LinkedFeatures:
    """Region features left in a source file, reached by an HDF5 external link."""
    file: str
    dataset: str


def describe_source(path, manifest_id: str | None = None) -> dict:
    """The `sources` entry of one input file: name, size and sha256."""
    path = Path(path)
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
    return {"file": path.name, "size": path.stat().st_size, "sha256": sha.hexdigest(), "manifest_id": manifest_id}


def describe_source_stat(path, manifest_id: str | None = None) -> dict:
    """A `sources` entry whose sha256 the caller fills in (it hashed the bytes while reading them)."""
    path = Path(path)
    return {"file": path.name, "size": path.stat().st_size, "sha256": None, "manifest_id": manifest_id}


def _write_dataset(group: h5py.Group, name: str, arr: np.ndarray) -> None:
    text = arr.dtype.kind == "O"
    if arr.size == 0 or arr.ndim == 0:
        group.create_dataset(name, data=arr, dtype=STR if text else arr.dtype)
        return
    group.create_dataset(name, data=arr, dtype=STR if text else arr.dtype, chunks=True,
                         compression="gzip", compression_opts=4, shuffle=not text, fletcher32=not text)


class StoreWriter:
    """Writes one store to a temporary file beside `path`; renames it on success.

    Use as a context manager. Without `force`, an existing file at `path` is an
    error (checked at the start and, atomically, at the rename).
    """

    def __init__(self, path, *, task: str, input_kind: str, label_kind: str, class_names,
                 build: dict, sources: list, force: bool = False):
        self.path = Path(path)
        if input_kind not in INPUT_KINDS or label_kind not in LABEL_KINDS:
            raise StoreError(f"unknown input/label kind {input_kind!r}/{label_kind!r}")
        check_output_file(self.path, force)
        remove_stale_parts(self.path)
        self.force = force
        self.input_kind, self.label_kind = input_kind, label_kind
        self.class_names = [str(c) for c in class_names]
        self.vocab_size: int | None = None
        self.n_images: int | None = None
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=part_prefix(self.path), suffix=".part")
        os.close(fd)
        self.tmp, self.h5 = Path(tmp), None
        try:  # until `with` takes over, an error or a signal here must not leave the .part behind
            public_mode(self.tmp)  # mkstemp's 0600 would make stores private
            self.h5 = h5py.File(self.tmp, "w")
            attrs = self.h5.attrs
            attrs["format"], attrs["format_version"] = FORMAT, FORMAT_VERSION
            attrs["task"], attrs["input_kind"], attrs["label_kind"] = task, input_kind, label_kind
            attrs["class_names"] = json.dumps(self.class_names, allow_nan=False)
            attrs["build"] = json.dumps(build, sort_keys=True, allow_nan=False)
            attrs["sources"] = json.dumps(sources, sort_keys=True, allow_nan=False)
        except BaseException:
            self.abort()
            raise

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        else:
            self.abort()
        return False

    def set_json_attr(self, name: str, value) -> None:
        """A JSON root attribute beyond the contract's, e.g. a build `report`."""
        self.h5.attrs[name] = json.dumps(value, sort_keys=True, allow_nan=False)

    def write_vocab(self, tokens) -> None:
        tokens = [str(t) for t in tokens]
        if len(tokens) < 2 or len(set(tokens)) != len(tokens):
            raise StoreError("/vocab: needs unique entries, row 0 = padding and row 1 = unknown")
        _write_dataset(self.h5, "vocab", np.array(tokens, dtype=object))
        self.vocab_size = len(tokens)

    def begin_features(self, n_regions: int, dim: int, dtype) -> h5py.Dataset:
        """An empty, growable /regions/features (0, R, D) to fill image by image; then `write_regions`."""
        group = self.h5.require_group("regions")
        # one image per chunk: the trainer reads images one at a time; gzip 1 keeps copying fast
        return group.create_dataset("features", shape=(0, n_regions, dim), maxshape=(None, None, dim),
                                    dtype=dtype, chunks=(1, n_regions, dim), compression="gzip",
                                    compression_opts=1, shuffle=True, fletcher32=True)

    def write_regions(self, image_id, boxes, features=None, num_boxes=None) -> None:
        """`features`: an (M, R, D) array to copy in; LinkedFeatures (one: an external link; several:
        a virtual dataset joining them in order); or None when `begin_features` was filled.
        `num_boxes` (M,): real boxes per image when images have fewer than R (the rest is padding)."""
        image_id, boxes = np.asarray(image_id, dtype=np.int64), np.asarray(boxes, dtype=np.float32)
        if boxes.ndim != 3 or boxes.shape[0] != len(image_id) or boxes.shape[2] != 4:
            raise StoreError(f"/regions/boxes: expected ({len(image_id)}, R, 4), got {boxes.shape}")
        group = self.h5.require_group("regions")
        _write_dataset(group, "image_id", image_id)
        _write_dataset(group, "boxes", boxes)
        if num_boxes is not None:
            num_boxes = np.asarray(num_boxes, dtype=np.int32)
            if num_boxes.shape != image_id.shape or num_boxes.min(initial=0) < 0 or \
                    num_boxes.max(initial=0) > boxes.shape[1]:
                raise StoreError(f"/regions/num_boxes: expected ({len(image_id)},) counts in [0, {boxes.shape[1]}]")
            _write_dataset(group, "num_boxes", num_boxes)
        if isinstance(features, LinkedFeatures):
            features = [features]
        if isinstance(features, list):
            shape = self._link_features(group, features)  # not resolved here: the source may be open
        elif features is not None:
            features = np.asarray(features)
            self.begin_features(features.shape[1], features.shape[2], features.dtype).resize(features.shape)
            group["features"][...] = features
        elif "features" not in group:
            raise StoreError("/regions/features: neither given nor filled through begin_features")
        if not isinstance(features, list):
            shape = group["features"].shape
        if shape[:2] != boxes.shape[:2]:
            raise StoreError(f"/regions/features: shape {shape} does not match boxes {boxes.shape}")
        self.n_images = len(image_id)

    def _link_features(self, group: h5py.Group, parts: list) -> tuple:
        """Link (one file) or join (several, a virtual dataset); returns the features' shape.

        Paths are relative to the store's folder, so store and features can move together."""
        rel = [os.path.relpath(Path(p.file).resolve(), self.path.parent.resolve()) for p in parts]
        shapes, dtypes = [], set()
        for part in parts:
            with h5py.File(part.file, "r") as src:
                shapes.append(src[part.dataset].shape)
                dtypes.add(src[part.dataset].dtype)
        if len(parts) == 1:
            group["features"] = h5py.ExternalLink(rel[0], parts[0].dataset)
            return shapes[0]
        if len({s[1:] for s in shapes}) != 1 or len(dtypes) != 1:
            raise StoreError(f"/regions/features: linked files disagree on (R, D) or dtype: {shapes} {dtypes}")
        layout = h5py.VirtualLayout(shape=(sum(s[0] for s in shapes),) + shapes[0][1:], dtype=dtypes.pop())
        start = 0
        for part, path, shape in zip(parts, rel, shapes):
            layout[start:start + shape[0]] = h5py.VirtualSource(path, part.dataset, shape=shape)
            start += shape[0]
        group.create_virtual_dataset("features", layout)
        return layout.shape

    def write_split(self, name: str, examples: dict, pairs_index=None, pairs_kind=(), subsets=None) -> None:
        ex = {k: _as_column(k, v) for k, v in examples.items()}
        index = np.zeros((0, 2), np.int64) if pairs_index is None else np.asarray(pairs_index, dtype=np.int64).reshape(-1, 2)
        kinds = np.array([str(k) for k in pairs_kind], dtype=object)
        subsets = {k: np.asarray(v, dtype=np.int64) for k, v in (subsets or {}).items()}
        if name in self.h5:
            raise StoreError(f"/{name}: split written twice")
        validate_split(name, ex, index, kinds, subsets, input_kind=self.input_kind, label_kind=self.label_kind,
                       n_classes=len(self.class_names), vocab_size=self.vocab_size, n_images=self.n_images)
        group = self.h5.create_group(name)
        for field, arr in ex.items():
            _write_dataset(group.require_group("examples"), field, arr)
        _write_dataset(group.require_group("pairs"), "index", index)
        _write_dataset(group["pairs"], "kind", kinds)
        for sub, rows in subsets.items():
            _write_dataset(group.require_group("subsets"), sub, rows)

    def commit(self) -> None:
        self.h5.attrs["content_digest"] = content_digest(self.h5)
        self.h5.close()
        with open(self.tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if self.force:
            os.replace(self.tmp, self.path)
            return
        try:  # link() refuses an existing target: no race with another writer
            os.link(self.tmp, self.path)
        except FileExistsError:
            self.abort()
            raise UserError(f"{self.path}: already exists (use --force to replace it)") from None
        self.tmp.unlink()

    def abort(self) -> None:
        try:
            if self.h5 is not None:
                self.h5.close()
        finally:
            self.tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------- reader


class Split:
    """One split, read lazily: `examples[field]` are h5py datasets."""

    def __init__(self, group: h5py.Group):
        self.name = group.name.strip("/")
        self.group = group
        self.examples = group["examples"]
        self.pairs_index = group["pairs/index"]
        self.pairs_kind = group["pairs/kind"]
        self.subsets = dict(group["subsets"].items()) if "subsets" in group else {}

    def __len__(self) -> int:
        return self.examples["id"].shape[0]

    def read(self, field: str, rows=None) -> np.ndarray:
        ds = self.examples[field]
        if is_string_dtype(ds.dtype):
            ds = ds.asstr()
        return ds[()] if rows is None else ds[np.asarray(rows)]


class Store:
    """A pair store opened for reading. Refuses non-cfpairs files and future versions."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            self.h5 = h5py.File(self.path, "r")
        except (OSError, ValueError) as exc:
            raise StoreError(f"{self.path}: cannot open as HDF5 ({exc.__class__.__name__}: {exc})") from None
        attrs = self.h5.attrs
        if attrs.get("format") != FORMAT:
            self.h5.close()
            raise StoreError(f"{self.path}: not a cfpairs store (root attribute format={attrs.get('format')!r})")
        version = int(attrs.get("format_version", -1))
        if version != FORMAT_VERSION:
            self.h5.close()
            raise StoreError(f"{self.path}: format_version {version} is not supported "
                             f"(this cfpairs reads version {FORMAT_VERSION}; upgrade cfpairs)")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.h5.close()

    def attr(self, name: str, default=None):
        value = self.h5.attrs.get(name, default)
        return value.decode() if isinstance(value, bytes) else value

    def json_attr(self, name: str, default=None):
        value = self.attr(name)
        return default if value is None else json.loads(value)

    task = property(lambda self: self.attr("task"))
    input_kind = property(lambda self: self.attr("input_kind"))
    label_kind = property(lambda self: self.attr("label_kind"))
    class_names = property(lambda self: self.json_attr("class_names", []))
    build = property(lambda self: self.json_attr("build", {}))
    sources = property(lambda self: self.json_attr("sources", []))
    digest = property(lambda self: self.attr("content_digest"))

    @property
    def splits(self) -> list[str]:
        """Split names: train, val, test first, then the extras in name order."""
        names = [k for k in self.h5.keys() if k not in RESERVED_GROUPS and isinstance(self.h5[k], h5py.Group)]
        first = [s for s in ("train", "val", "test") if s in names]
        return first + sorted(set(names) - set(first))

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise StoreError(f"{self.path}: no split {name!r} (splits: {', '.join(self.splits)})")
        return Split(self.h5[name])

    @property
    def vocab(self) -> list[str] | None:
        return list(self.h5["vocab"].asstr()[()]) if "vocab" in self.h5 else None

    @property
    def regions(self) -> h5py.Group | None:
        return self.h5["regions"] if "regions" in self.h5 else None

    def regions_info(self) -> "RegionsInfo | None":
        """What /regions holds, without reading features; None for stores without regions."""
        regions = self.regions
        if regions is None:
            return None
        link = regions.get("features", getlink=True)
        try:
            features = regions["features"]
            shape, dtype = tuple(features.shape), str(features.dtype)
        except KeyError:  # a dangling external link or virtual source
            features, shape, dtype = None, None, None
        if isinstance(link, h5py.ExternalLink):
            where = f"linked to {link.filename}:{link.path}"
        elif features is not None and features.is_virtual:
            where = f"virtual over {', '.join(sorted({s.file_name for s in features.virtual_sources()}))}"
        else:
            where = "stored"
        return RegionsInfo(int(regions["image_id"].shape[0]), tuple(regions["boxes"].shape), shape, dtype, where)


@dataclass(frozen=True)
class RegionsInfo:
    n_images: int
    boxes_shape: tuple            # (M, R, 4)
    features_shape: tuple | None  # (M, R, D); None when a linked file cannot be resolved
    features_dtype: str | None
    features_where: str           # "stored", "linked to FILE:DATASET" or "virtual over FILES"


class RegionFeatureReader:
    """/regions/features of a store read by image rows. Each process opens the file itself
    (h5py handles must not cross a fork), so DataLoader workers can share one reader."""

    def __init__(self, store_path):
        self.path = str(store_path)
        self._pid, self._dataset = None, None

    def __getstate__(self):
        return {"path": self.path, "_pid": None, "_dataset": None}

    def _features(self) -> h5py.Dataset:
        if self._pid != os.getpid():
            try:
                self._dataset = h5py.File(self.path, "r")["regions/features"]
            except (OSError, KeyError) as exc:
                raise StoreError(f"{self.path}: /regions/features cannot be opened (linked file moved?) "
                                 f"({' '.join(str(exc).split())[:160]})") from None
            self._pid = os.getpid()
        return self._dataset

    def read(self, image_rows: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
        """(n, R, D) float32 features of the given rows (repeats allowed, any order); regions where
        `keep` (n, R) is False are zeroed."""
        features = self._features()
        unique, inverse = np.unique(np.asarray(image_rows), return_inverse=True)
        try:
            block = features[unique] if len(unique) else np.zeros((0,) + features.shape[1:], np.float32)
        except (OSError, RuntimeError) as exc:  # a damaged chunk, or a linked file changed underneath
            raise StoreError(f"{self.path}: /regions/features rows {unique[:3].tolist()}... cannot be read "
                             f"({' '.join(str(exc).split())[:160]})") from None
        out = np.asarray(block, dtype=np.float32)[inverse.reshape(-1)]
        if keep is not None:
            out[~keep] = 0  # numpy: ~10x faster here than torch's boolean index_put
        return out
