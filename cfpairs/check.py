"""`verify` and `inspect` over a store, through the reader in `cfpairs.store`."""

from __future__ import annotations

import json
from collections import Counter

import h5py
import numpy as np

from cfpairs import memo
from cfpairs.hashcache import cached_sha256
from cfpairs.errors import StoreError
from cfpairs.label_kinds import label_kind
from cfpairs.store import Store, content_digest, read_dataset
from cfpairs.rules import validate_split

ROOT_ATTRS = ("task", "input_kind", "label_kind", "class_names", "build", "sources", "content_digest")


def verify_store(path, allow_external: bool = False) -> str | None:
    """None when the store is whole; otherwise a message naming the first failure."""
    try:
        check_store(path, digest=True, allow_external=allow_external)
    except StoreError as exc:
        return str(exc)
    return None


def check_store(path, digest: bool = False, allow_external: bool = False) -> str | None:
    """Raise StoreError naming the first failure: what the file holds (`cfpairs.structure`), the
    format, every split's datasets and invariants (every example dataset is read, so a damaged
    chunk is found); with `digest`, also the content digest (reads every stored dataset: region
    features too) and the sha256 of linked feature files against `sources`. Returns the digest it
    computed (None without `digest`). A store that passed, unchanged since in this process, is not
    read again (`cfpairs.memo`)."""
    version = memo.file_version(path)
    found = memo.recall("check", version, digest, allow_external)
    if found is not None:
        return found[0]
    computed, linked = _check_store(path, digest, allow_external)
    if not linked:  # linked feature files are checked each time
        memo.remember("check", version, (computed,), digest, allow_external)
    return computed


def _check_store(path, digest: bool, allow_external: bool) -> tuple:
    """`check_store`'s work: (the digest it computed or None, whether feature files are linked)."""
    with Store(path, allow_external) as store:
        _check_root(store)
        _check_splits(store)
        linked = store.layout.external is not None
        if not digest:
            if linked:  # features read from other files: only as pinned
                check_linked_files(store)
            return None, linked
        computed = content_digest(store.h5, store.layout, store.format_version)
        if computed != store.digest:
            raise StoreError(f"{path}: content_digest mismatch (stored {store.digest[:12]}..., "
                             f"computed {computed[:12]}...)")
        if linked:
            check_linked_files(store)
        return computed, linked


def check_linked_files(store: Store) -> None:
    """Each file the features are linked to (resolved relative to the store's folder) is listed in
    `sources` by its name, with its size and sha256 (hashed once per file version:
    `cfpairs.hashcache`)."""
    for part in {p.file: p for p in store.layout.external.parts}.values():
        file = part.file
        listed = [s for s in store.sources if isinstance(s, dict) and s.get("file") == file.name]
        if not listed:
            raise StoreError(f"{store.path}: linked feature file {file} is not listed in the store's sources, so "
                             "its content cannot be checked (a store reads only the feature files it was built "
                             "with)")
        size, sha256 = cached_sha256(file)
        if not any(s.get("size") == size and s.get("sha256") == sha256 for s in listed):
            raise StoreError(f"{store.path}: linked feature file {file} differs from the one the store was built "
                             f"with (sha256 {sha256[:12]}..., sources say {str(listed[0].get('sha256'))[:12]}...)")


def upgrade_note(store: Store) -> str | None:
    """For a store of an older format: what it lacks and the command that rebuilds it."""
    if store.format_version >= 2:
        return None
    command = store.build.get("command") if isinstance(store.build.get("command"), str) else "cfbuild"
    return (f"{store.path} is format 1: its digest covers its datasets but not its attributes (class names, "
            f"build, sources); rebuild it (format 3) with the command that made it ({command} ... --force)")


def _check_root(store: Store) -> None:
    for name in ROOT_ATTRS:
        if store.attr(name) is None:
            raise StoreError(f"{store.path}: root attribute {name!r} is missing")
    if not isinstance(store.digest, str):
        raise StoreError(f"{store.path}: root attribute 'content_digest' must be a string")
    # class_names, build, sources, kinds and version: checked by Store when it opens the file


def _check_splits(store: Store) -> None:
    vocab = store.vocab
    regions = store.regions_info()
    if regions is not None:
        if len(regions.features_shape) != 3 or regions.features_shape[:2] != regions.boxes_shape[:2]:
            raise StoreError(f"{store.path}: /regions/features {regions.features_shape} does not match boxes")
    if not store.splits:
        raise StoreError(f"{store.path}: no splits")
    for name in store.splits:
        split = store.split(name)
        index, kinds = split.pairs_index, split.pairs_kind
        examples = {f: _read(store, ds) for f, ds in split.examples.items()}
        index, kinds = _read(store, index), _read(store, kinds)
        relation = _read(store, split.pairs_relation) if split.pairs_relation is not None else None
        if relation is None and store.format_version >= 3:
            raise StoreError(f"{store.path}: /{name}/pairs/relation is missing (format 3 gives each pair its relation)")
        subsets = {k: _read(store, v) for k, v in split.subsets.items()}
        try:
            validate_split(name, examples, index, kinds, subsets, input_kind=store.input_kind,
                           label_kind=store.label_kind, n_classes=len(store.class_names),
                           vocab_size=None if vocab is None else len(vocab),
                           n_images=None if regions is None else regions.n_images, pairs_relation=relation)
        except StoreError as exc:  # the rules name the dataset; a reader also needs the file
            raise StoreError(f"{store.path}: {exc}") from None
        if regions is not None and examples["region_mask"].shape[1] != regions.boxes_shape[1]:
            raise StoreError(f"{store.path}: /{name}/examples/region_mask: {examples['region_mask'].shape[1]} regions, "
                             f"/regions/boxes has {regions.boxes_shape[1]}")


def _read(store: Store, ds: h5py.Dataset) -> np.ndarray:
    """A whole dataset, strings as an object array; a read failure names the dataset."""
    data = read_dataset(store.path, ds)
    return np.asarray(data, dtype=object) if data.dtype.kind == "O" else data


def summarize(store: Store) -> dict:
    """Everything `cfbuild inspect` shows, as plain JSON-able data."""
    splits = {}
    for name in store.splits:
        split = store.split(name)
        is_cf = split.read("is_counterfactual")
        kinds = Counter(_read(store, split.pairs_kind).tolist())
        relation = [v.decode() if isinstance(v, bytes) else v for v in _read(store, split.pairs_relation).tolist()] \
            if split.pairs_relation is not None else []
        splits[name] = {
            "examples": len(split), "originals": int((~is_cf).sum()), "counterfactuals": int(is_cf.sum()),
            "pairs": dict(sorted(kinds.items())),
            "relations": {"flip": sum(kinds.values()) - relation.count("keep"), "keep": relation.count("keep")},
            "subsets": {k: int(v.shape[0]) for k, v in split.subsets.items()},
            "labels": label_kind(store.label_kind).counts(split.read, store.class_names),
        }
    summary = {
        "path": str(store.path), "task": store.task, "input_kind": store.input_kind,
        "label_kind": store.label_kind, "classes": store.class_names, "splits": splits,
        "sources": store.sources, "build": store.build, "content_digest": store.digest,
    }
    if store.vocab is not None:
        summary["vocab_size"] = len(store.vocab)
    regions = store.regions_info()
    if regions is not None:
        summary["regions"] = {"images": regions.n_images, "boxes": regions.boxes_shape[1],
                              "features": regions.features_where, "shape": list(regions.features_shape),
                              "dtype": regions.features_dtype}
    report = store.json_attr("report")
    if report is not None:
        summary["report"] = report
    return summary


def short_list(items: list, first: int = 8, rest: str = "") -> str:
    """A long list on a terminal: its count, its first items, and where the rest is."""
    items = [str(i) for i in items]
    if len(items) <= first:
        return ", ".join(items)
    return f"{', '.join(items[:first])} ... ({len(items) - first} more{'; ' + rest if rest else ''})"


def format_summary(summary: dict) -> str:
    """A human-readable table of `summarize`'s output."""
    classes = summary["classes"]
    lines = [f"store    {summary['path']}",
             f"task     {summary['task']}  (input {summary['input_kind']}, labels {summary['label_kind']})",
             f"classes  {len(classes)}: {short_list(classes, rest='inspect --json lists them')}"]
    if "vocab_size" in summary:
        lines.append(f"vocab    {summary['vocab_size']} entries")
    if "regions" in summary:
        reg = summary["regions"]
        lines.append(f"regions  {reg['images']} images x {reg['boxes']} boxes, features {reg['features']}"
                     + (f" {reg['shape']} {reg['dtype']}" if "shape" in reg else ""))
    lines += ["", f"{'split':<14}{'examples':>10}{'original':>10}{'counterf.':>10}  pairs by kind"]
    for name, s in summary["splits"].items():
        pairs = ", ".join(f"{k} {v}" for k, v in s["pairs"].items()) or "-"
        keep = s.get("relations", {}).get("keep", 0)
        pairs += f" ({keep} keep the label)" if keep else ""
        lines.append(f"{name:<14}{s['examples']:>10}{s['originals']:>10}{s['counterfactuals']:>10}  {pairs}")
    for name, s in summary["splits"].items():
        labels = short_list([f"{k} {v}" for k, v in s["labels"].items()], rest="inspect --json lists them")
        subsets = "".join(f"; subset {k}: {v} rows" for k, v in s["subsets"].items())
        lines.append(f"labels {name}: {labels}{subsets}")
    lines.append("")
    for src in summary["sources"]:
        lines.append(f"source   {src.get('file')}  {src.get('size')} bytes  sha256 {str(src.get('sha256'))[:16]}...")
    build = summary["build"]
    lines.append(f"build    {build.get('command', '?')}  {json.dumps(build.get('parameters', {}), sort_keys=True)}")
    for key, value in _flatten(summary.get("report", {})):
        text = json.dumps(value) if not isinstance(value, str) else value
        lines.append(f"report   {key}: {text if len(text) < 160 else text[:157] + '...'}")
    lines.append(f"digest   {summary['content_digest']}")
    return "\n".join(lines)


def _flatten(report: dict, prefix: str = ""):
    """(dotted key, leaf value) pairs of a nested report, empty lists and zeros left out."""
    for key, value in report.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        elif value not in ([], 0, None, ""):
            yield f"{prefix}{key}", value
