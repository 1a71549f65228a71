"""The content digest of a pair store (docs/STORE.md: "The digest"): sha256 over every stored
dataset's bytes in a fixed order, so `cfbuild verify` can prove a file whole and unchanged."""

from __future__ import annotations

import hashlib

import h5py
import numpy as np

from cfpairs.errors import StoreError


def is_string_dtype(dtype) -> bool:
    return dtype.kind in "OUS" or h5py.check_string_dtype(dtype) is not None


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
