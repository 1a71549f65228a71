"""What a store may contain (docs/STORE.md: "What a reader refuses, and why"), checked when any
reader opens one, before a byte of data is read.

A store is a tree of groups and datasets joined by hard links, one link per object, datasets of
numbers or strings kept in the file itself. Anything that would make a reader open another file
is refused by name: an external link, a soft link, a virtual dataset, HDF5 external raw storage
(a dataset whose bytes live in another file, e.g. /etc/passwd), a second hard link (which also
makes a cycle), a filter plugin, references. The one exception is `/regions/features`, which
`docs/STORE.md` lets a builder leave in source feature files (an external link or a virtual
dataset joining whole files row by row): read only when the caller allows it (`allow_external`),
resolved by this module relative to the store's folder, never by HDF5's own search paths, and
every linked dataset checked by the same rules.

`walk` returns the layout every reader and the digest use, so the digest covers what is read.
"""

from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from cfpairs import memo
from cfpairs.errors import StoreError

EXTERNAL_FEATURES = "/regions/features"
RULES = "docs/STORE.md: What a reader refuses"
# HDF5's built-in filters and h5py's LZF: none of them loads a plugin (a shared library)
PLAIN_FILTERS = {h5py.h5z.FILTER_DEFLATE, h5py.h5z.FILTER_SHUFFLE, h5py.h5z.FILTER_FLETCHER32,
                 h5py.h5z.FILTER_SZIP, h5py.h5z.FILTER_NBIT, h5py.h5z.FILTER_SCALEOFFSET, 32000}
ALLOW_HINT = "pass --allow-external (Python: allow_external=True) to read it"
# what reading every dataset may produce, against the file's size: our stores are 1-2x overall (single
# datasets 100-200x: the labels), a deflate bomb 1,000x; small files get a floor
EXPANSION_ENV, MAX_EXPANSION, EXPANSION_FLOOR = "CFPAIRS_MAX_EXPANSION", 100.0, 16 << 20


@dataclass(frozen=True)
class FeaturePart:
    """Rows [start, stop) of /regions/features, read from `dataset` in `file` (`name`: the file as the
    store names it, relative to its folder)."""
    file: Path
    dataset: str
    start: int
    stop: int
    name: str = ""


@dataclass(frozen=True)
class ExternalFeatures:
    """Region features kept in other files: how the store reaches them and where they resolve."""
    how: str                 # "external link" or "virtual dataset"
    parts: tuple             # FeaturePart, in row order
    shape: tuple
    dtype: str

    def describe(self) -> str:
        files = ", ".join(f"{p.file}:{p.dataset}" for p in self.parts)
        return f"{self.how} to {files}"


@dataclass
class Layout:
    """Every dataset and attribute a reader may read, by path, and the external features if allowed."""
    datasets: list = field(default_factory=list)      # paths without the leading "/", e.g. train/examples/id
    attributes: list = field(default_factory=list)    # (object path, attribute name)
    external: ExternalFeatures | None = None


def walked(h5: h5py.File, path, allow_external: bool = False) -> Layout:
    """`walk`, remembered for an unchanged file of this process (`cfpairs.memo`): a store's own data
    only (a layout with linked feature files is walked each time)."""
    version = memo.file_version(path)
    layout = memo.recall("layout", version, allow_external)
    if layout is None:
        layout = walk(h5, path, allow_external)
        if layout.external is None:
            memo.remember("layout", version, layout, allow_external)
    return layout


def walk(h5: h5py.File, path, allow_external: bool = False) -> Layout:
    """The store's layout after checking every link, dataset and attribute (StoreError names the
    first object a store may not hold), and what they declare against what the file holds: every
    chunk written, a contiguous dataset's bytes present, and no more data in all than
    `MAX_EXPANSION` times the file's size (`CFPAIRS_MAX_EXPANSION` raises it for a large store of
    very repetitive data), so that no reader, nor the digest, ever decompresses a bomb or reads fill
    values a small file only declares. It goes through HDF5's low-level interface (h5py's objects
    cost ten times as much per object, and a store is opened often)."""
    layout, seen, declared = Layout(), {}, 0
    root = h5py.h5o.open(h5.id, b"/")
    _check_object(root, "/", path, seen, layout)
    pending = [(root, "/")]
    while pending:
        group, where = pending.pop()
        for raw in sorted(group):
            name = _text(raw, where, path)
            child = where.rstrip("/") + "/" + name
            if _link_type(group, raw, child, path) == h5py.h5l.TYPE_EXTERNAL:
                layout.external = _external_features(h5py.Group(group), name, child, path, allow_external)
                continue
            obj = h5py.h5o.open(group, raw)
            _check_object(obj, child, path, seen, layout)
            if child == EXTERNAL_FEATURES and _is_virtual(obj):
                layout.external = _external_features(h5py.Group(group), name, child, path, allow_external)
                continue
            if isinstance(obj, h5py.h5g.GroupID):
                pending.append((obj, child))
            elif isinstance(obj, h5py.h5d.DatasetID):
                plist = obj.get_create_plist()
                check_dataset(obj, child, path, plist)
                declared += check_stored(obj, child, path, plist)
                layout.datasets.append(child.lstrip("/"))
            else:
                what = "datatype" if isinstance(obj, h5py.h5t.TypeID) else type(obj).__name__.lower()
                raise StoreError(f"{path}: {child} is a {what}, not a group or a dataset ({RULES})")
    check_expansion(declared, path)
    layout.datasets.sort()
    layout.attributes.sort()
    return layout


def _text(raw: bytes, where: str, path) -> str:
    """A link's or an attribute's name: UTF-8, as every reader decodes it."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise StoreError(f"{path}: a name in {where} is not UTF-8 text ({raw[:40]!r}) ({RULES})") from None


def _link_type(group, raw: bytes, where: str, path) -> int:
    """A hard link's type, or the external link at EXTERNAL_FEATURES; any other link refused."""
    try:
        kind = group.links.get_info(raw).type
        target = group.links.get_val(raw) if kind in (h5py.h5l.TYPE_SOFT, h5py.h5l.TYPE_EXTERNAL) else None
    except (KeyError, OSError, RuntimeError, TypeError, ValueError):
        kind = None
    if kind == h5py.h5l.TYPE_SOFT:
        raise StoreError(f"{path}: {where} is a soft link to {target.decode(errors='replace')}; a store holds no "
                         f"links ({RULES})")
    if kind == h5py.h5l.TYPE_EXTERNAL and where != EXTERNAL_FEATURES:
        file, inside = (part.decode(errors="replace") for part in target)
        raise StoreError(f"{path}: {where} is an external link to {file}:{inside}; a store holds no links to other "
                         f"files ({RULES})")
    if kind not in (h5py.h5l.TYPE_HARD, h5py.h5l.TYPE_EXTERNAL):  # e.g. a user-defined link class
        raise StoreError(f"{path}: {where} is a link of a kind HDF5 cannot describe ({RULES})")
    return kind


class _Owner:
    """What h5py's AttributeManager reads of the object it belongs to: its low-level id."""

    def __init__(self, oid):
        self.id = oid


def _attribute_names(obj) -> list:
    """An object's attribute names in h5py's order (creation order where the file tracks it)."""
    tracked = obj.get_create_plist().get_attr_creation_order() & h5py.h5p.CRT_ORDER_TRACKED
    names = []
    h5py.h5a.iterate(obj, lambda name, *_: names.append(name),
                     index_type=h5py.h5.INDEX_CRT_ORDER if tracked else h5py.h5.INDEX_NAME)
    return names


def _check_object(obj, where: str, path, seen: dict, layout: Layout) -> None:
    """One hard link per object (a second one is also how a cycle is made); attributes checked.
    `obj`: a low-level id (h5py.h5o.open)."""
    info = h5py.h5o.get_info(obj)
    if info.addr in seen:
        raise StoreError(f"{path}: {where} is a second hard link to {seen[info.addr]}; each object of a store "
                         f"has one ({RULES})")
    if info.rc != 1:
        raise StoreError(f"{path}: {where} has {info.rc} hard links; each object of a store has one ({RULES})")
    seen[info.addr] = where
    if not info.num_attrs:
        return
    for raw in _attribute_names(obj):
        name = _text(raw, where, path)
        attribute = h5py.h5a.open(obj, raw)
        dtype = attribute.dtype
        if not plain_dtype(dtype):
            raise StoreError(f"{path}: attribute {name!r} of {where} has type {dtype}; attributes hold numbers "
                             f"and strings ({RULES})")
        if attribute.shape is None:
            raise StoreError(f"{path}: attribute {name!r} of {where} has no dataspace (a null attribute) ({RULES})")
        wanted = math.prod(attribute.shape) * attribute.get_type().get_size()
        if wanted > attribute.get_storage_size() + 64:
            raise StoreError(f"{path}: attribute {name!r} of {where} declares {wanted:,} bytes and the file holds "
                             f"{attribute.get_storage_size():,} ({RULES})")
        if dtype.kind in "SOU" or h5py.check_string_dtype(dtype) is not None:
            _check_text(h5py.AttributeManager(_Owner(obj)), name, where, path)
        layout.attributes.append((where, name))


def _check_text(attrs, name: str, where: str, path) -> None:
    """A string attribute is UTF-8 text (a reader decodes it)."""
    try:
        value = attrs[name]
        for item in np.asarray(value, dtype=object).ravel():
            if isinstance(item, (bytes, np.bytes_)):
                bytes(item).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StoreError(f"{path}: attribute {name!r} of {where} is not UTF-8 text (byte {exc.start}) "
                         f"({RULES})") from None


def _low(ds):
    """A dataset's low-level id (h5py's Dataset or the id itself)."""
    return ds.id if isinstance(ds, h5py.Dataset) else ds


def check_stored(ds, where: str, path, plist=None) -> int:
    """The bytes `ds` declares (elements x the file's element size), after checking that the file
    stores them: a null dataspace refused, every chunk of a chunked dataset written (an unwritten
    chunk reads as fill values the file never held), a contiguous dataset's bytes present.
    `ds`: an h5py Dataset or its low-level id; `plist`: its creation property list, if at hand."""
    ds = _low(ds)
    shape = ds.shape
    if shape is None:
        raise StoreError(f"{path}: {where} has no dataspace (a null dataset); datasets hold arrays ({RULES})")
    declared = math.prod(shape) * ds.get_type().get_size()  # Python integers: no overflow
    if not declared:
        return 0
    plist = ds.get_create_plist() if plist is None else plist
    if plist.get_layout() == h5py.h5d.CHUNKED:
        needed = math.prod(-(-n // c) for n, c in zip(shape, plist.get_chunk()))
        if needed > 1 << 40:
            raise StoreError(f"{path}: {where} declares {needed:,} chunks (shape {shape}) ({RULES})")
        stored = ds.get_num_chunks()
        if stored < needed:
            raise StoreError(f"{path}: {where} declares shape {shape} ({declared:,} bytes) and stores {stored:,} "
                             f"of its {needed:,} chunks; a store writes every chunk ({RULES})")
    elif ds.get_storage_size() < declared:
        raise StoreError(f"{path}: {where} declares {declared:,} bytes and the file holds "
                         f"{ds.get_storage_size():,} of them ({RULES})")
    return declared


def check_expansion(declared: int, path) -> None:
    """All datasets together declare at most MAX_EXPANSION x the file's size (a floor for small files)."""
    size = os.path.getsize(path)
    try:
        ratio = float(os.environ.get(EXPANSION_ENV) or MAX_EXPANSION)
    except ValueError:
        raise StoreError(f"{EXPANSION_ENV}={os.environ[EXPANSION_ENV]!r}: expected a number") from None
    if declared > max(ratio * size, EXPANSION_FLOOR):
        raise StoreError(f"{path}: its datasets declare {declared:,} bytes, {declared / max(size, 1):,.0f} times the "
                         f"file's {size:,} (a store of ours is 1-2 times; the limit is {ratio:g}: "
                         f"{EXPANSION_ENV}=N raises it for a large store you trust) ({RULES})")


def plain_dtype(dtype) -> bool:
    """Numbers, booleans and strings: nothing that refers to anything else."""
    return dtype.kind in "biuf" or (dtype.kind == "S") or h5py.check_string_dtype(dtype) is not None


def _is_virtual(obj) -> bool:
    obj = _low(obj)
    return isinstance(obj, h5py.h5d.DatasetID) and obj.get_create_plist().get_layout() == h5py.h5d.VIRTUAL


def check_dataset(ds, where: str, path, plist=None) -> None:
    """A dataset whose bytes are in its own file, of numbers or strings, with built-in filters only.
    `ds`: an h5py Dataset or its low-level id; `plist`: its creation property list, if at hand."""
    ds = _low(ds)
    plist = ds.get_create_plist() if plist is None else plist
    if plist.get_external_count():
        target = plist.get_external(0)[0]
        target = target.decode(errors="replace") if isinstance(target, bytes) else target
        raise StoreError(f"{path}: {where} keeps its bytes in {target} (HDF5 external storage); a store holds "
                         f"its data itself ({RULES})")
    if plist.get_layout() == h5py.h5d.VIRTUAL:
        files = sorted({s.file_name for s in h5py.Dataset(ds).virtual_sources()})
        raise StoreError(f"{path}: {where} is a virtual dataset over {', '.join(files)}; a store holds its data "
                         f"itself ({RULES})")
    for index in range(plist.get_nfilters()):
        code = plist.get_filter(index)[0]
        if code not in PLAIN_FILTERS:
            raise StoreError(f"{path}: {where} needs HDF5 filter {code} (a plugin library); stores use gzip, "
                             f"shuffle and fletcher32 ({RULES})")
    if not plain_dtype(ds.dtype):
        raise StoreError(f"{path}: {where} has type {ds.dtype}; datasets hold numbers and strings ({RULES})")


def plain_member(h5: h5py.File, name: str, path) -> h5py.Dataset:
    """A builder's input dataset `name` (a features file's), held by the file itself: reached by a
    hard link, its bytes not in another file (a downloaded file is as untrusted as a store)."""
    if not isinstance(h5.get(name, getlink=True), h5py.HardLink) or not isinstance(h5[name], h5py.Dataset):
        raise StoreError(f"{path}: /{name} is not a dataset of this file (a link?) ({RULES})")
    check_dataset(h5[name], f"/{name}", path)
    return h5[name]


# ---------------------------------------------------------------- external region features


def _external_features(group, name: str, where: str, path, allow: bool) -> ExternalFeatures:
    link = group.get(name, getlink=True)
    if isinstance(link, h5py.ExternalLink):
        what = f"an external link to {link.filename}:{link.path}"
        if not allow:
            raise StoreError(f"{path}: {where} is {what} (region features kept in another file); {ALLOW_HINT}")
        file = resolve_linked_file(path, link.filename, where)
        shape, dtype = _linked_dataset(file, link.path, where, path)
        return ExternalFeatures("external link", (FeaturePart(file, link.path, 0, shape[0], link.filename),),
                                shape, dtype)
    ds = group[name]
    sources = ds.virtual_sources()
    what = f"a virtual dataset over {', '.join(sorted({s.file_name for s in sources}))}"
    if not allow:
        raise StoreError(f"{path}: {where} is {what} (region features kept in other files); {ALLOW_HINT}")
    return ExternalFeatures("virtual dataset", _virtual_parts(ds, sources, where, path), tuple(ds.shape),
                            str(ds.dtype))


def resolve_linked_file(path, filename: str, where: str) -> Path:
    """A linked file, relative to the store's folder (as the writer makes it): an existing regular file."""
    if filename in ("", ".") or os.path.isabs(filename):
        raise StoreError(f"{path}: {where} links to {filename!r}; linked feature files are named relative to the "
                         f"store's folder ({RULES})")
    file = Path(path).resolve().parent / filename
    try:
        mode = os.stat(file).st_mode
    except OSError:
        raise StoreError(f"{path}: {where} links to {file}, which cannot be found (linked file moved?)") from None
    if not stat.S_ISREG(mode):
        raise StoreError(f"{path}: {where} links to {file}, which is not a regular file")
    return file


def _linked_dataset(file: Path, dataset: str, where: str, path) -> tuple:
    """(shape, dtype) of a linked features dataset, reached by hard links only and checked like any."""
    try:
        with h5py.File(file, "r") as linked:
            node = linked
            for part in [p for p in dataset.split("/") if p]:
                if part not in node or not isinstance(node.get(part, getlink=True), h5py.HardLink):
                    raise StoreError(f"{path}: {where} links to {file}:{dataset}, which is not a dataset reached "
                                     f"without links ({RULES})")
                node = node[part]
            if not isinstance(node, h5py.Dataset) or node.ndim != 3:
                raise StoreError(f"{path}: {where} links to {file}:{dataset}, which is not an (M, R, D) dataset")
            check_dataset(node, f"{where} ({file}:{dataset})", path)
            return tuple(node.shape), str(node.dtype)
    except OSError as exc:
        raise StoreError(f"{path}: {where} links to {file}, which cannot be opened as HDF5 "
                         f"({' '.join(str(exc).split())[:120]})") from None


def _virtual_parts(ds, sources, where: str, path) -> tuple:
    """Whole source datasets joined row by row in order (what the writer makes), else refused."""
    parts, row = [], 0
    for source in sorted(sources, key=lambda s: s.vspace.get_select_bounds()[0][0]):
        (start, *low), (stop, *high) = source.vspace.get_select_bounds()
        full = list(low) == [0] * (ds.ndim - 1) and [h + 1 for h in high] == list(ds.shape[1:])
        if start != row or not full or source.src_space.get_select_type() != h5py.h5s.SEL_ALL:
            raise StoreError(f"{path}: {where} is a virtual dataset that does not join whole files row by row "
                             f"({RULES})")
        file = resolve_linked_file(path, source.file_name, where)
        shape, _ = _linked_dataset(file, source.dset_name, where, path)
        if shape != (stop + 1 - start, *ds.shape[1:]):
            raise StoreError(f"{path}: {where}: {file}:{source.dset_name} has shape {shape}, the virtual dataset maps "
                             f"{stop + 1 - start} rows of {tuple(ds.shape[1:])}")
        parts.append(FeaturePart(file, source.dset_name, start, stop + 1, source.file_name))
        row = stop + 1
    if row != ds.shape[0]:
        raise StoreError(f"{path}: {where} is a virtual dataset whose files cover {row} of {ds.shape[0]} rows")
    return tuple(parts)


def read_rows(parts, rows: np.ndarray, open_file) -> np.ndarray:
    """Rows (sorted, unique) of features split across `parts`; `open_file(part)` gives its dataset."""
    blocks = []
    for part in parts:
        inside = rows[(rows >= part.start) & (rows < part.stop)]
        if len(inside):
            blocks.append(open_file(part)[inside - part.start])
    return np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
