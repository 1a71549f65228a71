"""Writing a pair store, format version 3: `StoreWriter` validates as it writes (`cfpairs.rules`)
and publishes the file by an atomic rename (`cfpairs.outputs`)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from cfpairs.digest import content_digest
from cfpairs.errors import OutputWriteError, StoreError
from cfpairs.outputs import BLOCK_BYTES, Room, Staged, write_failure
from cfpairs.progress import stop_if_requested
from cfpairs.rules import validate_split
from cfpairs.schema import FORMAT, FORMAT_VERSION, INPUT_KINDS, LABEL_KINDS, STR


def _as_column(name: str, values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind in "US" or (arr.dtype.kind == "O" and name != "x"):
        return np.array([str(v) if not isinstance(v, bytes) else v.decode() for v in arr.ravel()],
                        dtype=object).reshape(arr.shape)
    return arr


@dataclass(frozen=True)
class LinkedFeatures:
    """Region features left in a source file, reached by an HDF5 external link."""
    file: str
    dataset: str


def describe_source(path, manifest_id: str | None = None) -> dict:
    """The `sources` entry of one input file: name, size and sha256 (of a folder, e.g. a split that
    `datasets` saved: its files' total size, and the sha256 over each file's relative name and sha256)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        listing = "".join(f"{p.relative_to(path)}\0{file_sha256(p)}\n" for p in files)
        return {"file": path.name, "size": sum(p.stat().st_size for p in files),
                "sha256": hashlib.sha256(listing.encode()).hexdigest(), "manifest_id": manifest_id}
    return {"file": path.name, "size": path.stat().st_size, "sha256": file_sha256(path), "manifest_id": manifest_id}


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in blocks."""
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def describe_source_stat(path, manifest_id: str | None = None) -> dict:
    """A `sources` entry whose sha256 the caller fills in (it hashed the bytes while reading them)."""
    path = Path(path)
    return {"file": path.name, "size": path.stat().st_size, "sha256": None, "manifest_id": manifest_id}


def _write_dataset(group: h5py.Group, name: str, arr: np.ndarray, room: Room | None = None) -> None:
    """Create and fill a dataset block by block (each checked for room first), then flush it while it
    is held (h5py would write its cached chunks when the object is dropped, and only print an error)."""
    text = arr.dtype.kind == "O"
    if arr.size == 0 or arr.ndim == 0:
        ds = group.create_dataset(name, data=arr, dtype=STR if text else arr.dtype)
    else:
        ds = group.create_dataset(name, shape=arr.shape, dtype=STR if text else arr.dtype, chunks=True,
                                  compression="gzip", compression_opts=4, shuffle=not text, fletcher32=not text)
        row_bytes = max(1, (sum(len(str(v)) + 16 for v in arr.ravel()[:1000]) / min(arr.size, 1000)
                            * int(np.prod(arr.shape[1:], dtype=np.int64))) if text else arr[:1].nbytes)
        step = max(1, int(BLOCK_BYTES // row_bytes))
        for start in range(0, len(arr), step):
            stop_if_requested()  # a signal that a library or a finalizer swallowed
            block = arr[start:start + step]
            if room is not None:
                room.ensure(len(block) * row_bytes)
            ds[start:start + len(block)] = block
    ds.flush()


class StoreWriter:
    """Writes one store to a temporary file beside `path`; renames it on success.

    Use as a context manager. Without `force`, an existing file at `path` is an error (checked at
    the start and, atomically, at the rename); with it, only a cfpairs store is replaced
    (`cfpairs.outputs`). `inputs`: files the build reads, which the output must not be or touch.
    """

    def __init__(self, path, *, task: str, input_kind: str, label_kind: str, class_names,
                 build: dict, sources: list, force: bool = False, inputs=(), option: str = "--out"):
        self.path = Path(path)
        if input_kind not in INPUT_KINDS or label_kind not in LABEL_KINDS:
            raise StoreError(f"unknown input/label kind {input_kind!r}/{label_kind!r}")
        self.output = Staged(self.path, "store", force, inputs, option)
        self.input_kind, self.label_kind = input_kind, label_kind
        self.class_names = [str(c) for c in class_names]
        self.vocab_size: int | None = None
        self.n_images: int | None = None
        self.tmp, self.h5 = self.output.begin(), None
        try:  # until `with` takes over, an error or a signal here must not leave the .part behind
            self.h5 = h5py.File(self.tmp, "w")
            self.room = Room(self.path, option, self.h5.id.get_vfd_handle())
            attrs = self.h5.attrs
            attrs["format"], attrs["format_version"] = FORMAT, FORMAT_VERSION
            attrs["task"], attrs["input_kind"], attrs["label_kind"] = task, input_kind, label_kind
            attrs["class_names"] = json.dumps(self.class_names, allow_nan=False)
            attrs["build"] = json.dumps(build, sort_keys=True, allow_nan=False)
            attrs["sources"] = json.dumps(sources, sort_keys=True, allow_nan=False)
        except BaseException as exc:
            self.abort(exc)
            raise

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        else:
            self.abort(exc)
        return False

    def set_json_attr(self, name: str, value) -> None:
        """A JSON root attribute beyond the contract's, e.g. a build `report`."""
        self.h5.attrs[name] = json.dumps(value, sort_keys=True, allow_nan=False)

    def write_vocab(self, tokens) -> None:
        tokens = [str(t) for t in tokens]
        if len(tokens) < 2 or len(set(tokens)) != len(tokens):
            raise StoreError("/vocab: needs unique entries, row 0 = padding and row 1 = unknown")
        _write_dataset(self.h5, "vocab", np.array(tokens, dtype=object), self.room)
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
        _write_dataset(group, "image_id", image_id, self.room)
        _write_dataset(group, "boxes", boxes, self.room)
        if num_boxes is not None:
            num_boxes = np.asarray(num_boxes, dtype=np.int32)
            if num_boxes.shape != image_id.shape or num_boxes.min(initial=0) < 0 or \
                    num_boxes.max(initial=0) > boxes.shape[1]:
                raise StoreError(f"/regions/num_boxes: expected ({len(image_id)},) counts in [0, {boxes.shape[1]}]")
            _write_dataset(group, "num_boxes", num_boxes, self.room)
        if isinstance(features, LinkedFeatures):
            features = [features]
        if isinstance(features, list):
            shape = self._link_features(group, features)  # not resolved here: the source may be open
        elif features is not None:
            features = np.asarray(features)
            dataset = self.begin_features(features.shape[1], features.shape[2], features.dtype)
            dataset.resize(features.shape)
            step = max(1, BLOCK_BYTES // max(1, features[:1].nbytes))
            for start in range(0, len(features), step):
                self.room.ensure(features[start:start + step].nbytes)
                dataset[start:start + step] = features[start:start + step]
            dataset.flush()
        elif "features" not in group:
            raise StoreError("/regions/features: neither given nor filled through begin_features")
        else:
            group["features"].flush()  # filled through begin_features: its last chunks written now
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

    def write_split(self, name: str, examples: dict, pairs_index=None, pairs_kind=(), subsets=None,
                    pairs_relation=None) -> None:
        """One split: its examples, pairs (index, kind, and relation: flip, the default, or keep) and subsets."""
        ex = {k: _as_column(k, v) for k, v in examples.items()}
        index = np.zeros((0, 2), np.int64) if pairs_index is None else np.asarray(pairs_index, dtype=np.int64).reshape(-1, 2)
        kinds = np.array([str(k) for k in pairs_kind], dtype=object)
        relation = np.array(["flip"] * len(index) if pairs_relation is None else [str(r) for r in pairs_relation],
                            dtype=object)
        subsets = {k: np.asarray(v, dtype=np.int64) for k, v in (subsets or {}).items()}
        if name in self.h5:
            raise StoreError(f"/{name}: split written twice")
        validate_split(name, ex, index, kinds, subsets, input_kind=self.input_kind, label_kind=self.label_kind,
                       n_classes=len(self.class_names), vocab_size=self.vocab_size, n_images=self.n_images,
                       pairs_relation=relation)
        group = self.h5.create_group(name)
        for field, arr in ex.items():
            _write_dataset(group.require_group("examples"), field, arr, self.room)
        _write_dataset(group.require_group("pairs"), "index", index, self.room)
        _write_dataset(group["pairs"], "kind", kinds, self.room)
        _write_dataset(group["pairs"], "relation", relation, self.room)
        for sub, rows in subsets.items():
            _write_dataset(group.require_group("subsets"), sub, rows, self.room)

    def commit(self) -> None:
        try:
            self.h5.attrs["content_digest"] = content_digest(self.h5)
            self.h5.flush()  # a failed write raises here, cleanly; a failed close would crash the process
            self.h5.close()
        except BaseException as exc:
            self.abort(exc)
            raise
        self.output.publish()

    def abort(self, exc: BaseException | None = None) -> None:
        """Discard the part. HDF5's descriptor is pointed at /dev/null before closing: after a failed
        write the close would write again and could crash the process; the file is discarded anyway.
        A failed write becomes an OutputWriteError."""
        try:
            if self.h5 is not None and self.h5.id.valid:
                null = os.open(os.devnull, os.O_RDWR)
                try:
                    os.dup2(null, self.h5.id.get_vfd_handle())
                finally:
                    os.close(null)
                try:
                    self.h5.close()
                except (OSError, RuntimeError, ValueError):
                    pass  # e.g. it cannot extend /dev/null: nothing of this file is kept
        finally:
            self.h5 = None
            self.output.discard()
        reason = None if exc is None else write_failure(exc)
        if reason:
            raise OutputWriteError(f"{self.output.option} {self.path}: cannot be written: {reason}; nothing was "
                                   "left behind") from None
