"""The content digest of a pair store (docs/STORE.md: "The digest"): sha256 over what a reader
reads, in a fixed order, so `cfbuild verify` can detect damage. Kept inside the file, it does not
authenticate it (whoever changes a store can recompute it): a store from elsewhere is checked
against a digest published elsewhere (`cfbuild verify STORE --digest SHA256`).

Format 2 covers every attribute (but `content_digest` itself), every dataset and, where the
features are left in other files, how the store reaches them (the files' own bytes are pinned by
their sha256 in `sources`, an attribute the digest covers). Format 1 covered the datasets only;
stores of format 1 are still checked with its rule.
"""

from __future__ import annotations

import hashlib

import h5py
import numpy as np

from cfpairs.errors import StoreError
from cfpairs.progress import Progress
from cfpairs.structure import walk

DIGEST_ATTRIBUTE = "content_digest"
PROGRESS_BYTES = 256 << 20  # a digest over more than this shows its progress


def is_string_dtype(dtype) -> bool:
    return dtype.kind in "OUS" or h5py.check_string_dtype(dtype) is not None


def content_digest(h5: h5py.File, layout=None, version: int | None = None) -> str:
    """sha256 of the store under its format's rule (`version`: the file's `format_version`).

    Per entry: its name, NUL, dtype ('str' or little-endian numpy code), NUL, shape as
    comma-separated ints, NUL, then the elements in C order (numbers as little-endian bytes;
    strings as an 8-byte little-endian length + UTF-8). Format 2: first each attribute, named
    `@<object path>/<name>` (root: `@/task`), in sorted order; then each dataset, named by its path
    without the leading slash, in sorted order; then external features (`>/regions/features`, how,
    and per part its file as the store names it, dataset and rows). Format 1: the datasets only.
    `layout`: the store's checked layout (`cfpairs.structure.walk`); walked here when not given.
    """

    if layout is None:
        layout = walk(h5, h5.filename, allow_external=True)
    if version is None:
        version = int(h5.attrs.get("format_version", 2))
    digest = hashlib.sha256()
    if version >= 2:
        owners = {}  # each object looked up once (h5py's lookups cost more than a small store's bytes)
        for where, name in layout.attributes:
            if (where, name) != ("/", DIGEST_ATTRIBUTE):
                if where not in owners:
                    owners[where] = h5[where]
                _digest_array(digest, f"@{where.rstrip('/')}/{name}", np.asarray(owners[where].attrs[name]))
    datasets = {name: h5[name] for name in layout.datasets}
    sizes = {name: ds.size * ds.dtype.itemsize for name, ds in datasets.items()}
    total = sum(sizes.values())  # bounded by the walk: at most CFPAIRS_MAX_EXPANSION x the file
    bar = Progress(total, f"digest of {h5.filename}", unit="B", unit_scale=True) if total >= PROGRESS_BYTES else None
    try:
        for name, ds in datasets.items():
            try:
                _digest_dataset(digest, name, ds)
            except (OSError, RuntimeError) as exc:  # e.g. a chunk failing its Fletcher-32 checksum
                raise StoreError(f"{h5.filename}: dataset /{name} cannot be read back ({exc})") from None
            if bar is not None:
                bar.update(sizes[name])
    finally:
        if bar is not None:
            bar.close()
    if version >= 2 and layout.external is not None:
        parts = "".join(f"{p.name}\0{p.dataset}\0{p.start},{p.stop}\0" for p in layout.external.parts)
        digest.update(f">/regions/features\0{layout.external.how}\0{parts}".encode())
    return digest.hexdigest()


def data_digest(h5: h5py.File) -> str:
    """The datasets alone (format 1's rule): equal for two stores that hold the same data, whatever
    their attributes say (build parameters, sources)."""
    return content_digest(h5, version=1)


def _header(digest, name: str, dtype, shape) -> None:
    code = "str" if is_string_dtype(dtype) else dtype.newbyteorder("<").str
    digest.update(f"{name}\0{code}\0{','.join(map(str, shape))}\0".encode())


def _update(digest, block, dtype) -> None:
    if is_string_dtype(dtype):
        parts = [s if isinstance(s, bytes) else str(s).encode() for s in np.asarray(block).ravel()]
        digest.update(b"".join(len(p).to_bytes(8, "little") + p for p in parts))
    else:
        digest.update(np.ascontiguousarray(block, dtype=dtype.newbyteorder("<")).tobytes())


def _digest_array(digest, name: str, value: np.ndarray) -> None:
    _header(digest, name, value.dtype, value.shape)
    _update(digest, value, value.dtype)


def _digest_dataset(digest, name: str, ds: h5py.Dataset) -> None:
    _header(digest, name, ds.dtype, ds.shape)
    if ds.shape == ():
        blocks = [np.asarray(ds[()])[None]]
    else:
        row_bytes = max(1, ds.dtype.itemsize * int(np.prod(ds.shape[1:], dtype=np.int64)))
        step = max(1, (1 << 23) // row_bytes)
        blocks = (ds[start:start + step] for start in range(0, ds.shape[0], step))
    for block in blocks:
        _update(digest, block, ds.dtype)
