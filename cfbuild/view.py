"""`cfbuild view`: one self-contained HTML page per store split (and per run): the store's summary,
then one row per pair, the original beside its counterfactual with the edit as a word diff.

Rows carry stable hooks for tests and users' scripts: `data-pair-id` (the pair's index in the
split), `data-kind`, `data-label-change` (changed | same) and, with a run, `data-correct` (both |
original | edited | none). The page is written like every output (staged, `--force` only over a
page cfpairs wrote); `cfbuild/view_page.py` holds its layout, styles and script.
"""

from __future__ import annotations

import base64
import difflib
import re
from collections import Counter
from pathlib import Path

import numpy as np

from cfpairs.check import check_store
from cfpairs.errors import UserError
from cfpairs.outputs import check_output, write_page
from cfpairs.store import Store
from cfpairs.api import PairStore
from cfbuild.predictions import read_predictions
from cfbuild.view_page import escape, page

TEXT_FIELDS = {"text": ("text",), "text_pair": ("premise_text", "hypothesis_text"), "regions": ("text",)}


def word_diff(before: str, after: str) -> tuple[str, str]:
    """(before, after) as HTML: words the edit removed in <del>, words it added in <ins>."""
    a, b = before.split(), after.split()
    left, right = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        old, new = escape(" ".join(a[i1:i2])), escape(" ".join(b[j1:j2]))
        if op == "equal":
            left.append(old)
            right.append(new)
        else:
            if old:
                left.append(f"<del>{old}</del>")
            if new:
                right.append(f"<ins>{new}</ins>")
    return " ".join(left), " ".join(right)


def row_fields(store: Store, columns, row: int) -> dict:
    """{field: text} shown for one example (vectors: their coordinates, 3 decimals)."""
    if store.input_kind == "vector":
        return {"x": " ".join(f"{v:.3f}" for v in columns["x"][row])}
    return {f.replace("_text", ""): str(columns[f][row]) for f in TEXT_FIELDS[store.input_kind]}


def label_text(store: Store, columns, row: int) -> str:
    names = store.class_names
    if store.label_kind == "multilabel":
        return ", ".join(names[c] for c in np.flatnonzero(columns["label"][row])) or "(none)"
    if store.label_kind == "soft":
        index, score = columns["label_index"][row], columns["label_score"][row]
        kept = [(names[i], s) for i, s in zip(index, score) if i >= 0]
        return ", ".join(f"{n} {s:.2f}" for n, s in sorted(kept, key=lambda k: -k[1])) or "(no answer)"
    return names[int(columns["label"][row])]


REFERENCE = re.compile(r"(batch_id \S+?)(?=[:,;]|\s|$)|(\w+) line (\d+)")


def remarks_by_reference(report: dict, split: str) -> dict:
    """{reference: [remark]} from the build report's notes on this split: a note naming `batch_id N`
    or `<file> line N` is a remark on the pair whose rows carry that batch id or id `<file>:N`."""
    found = report.get("splits", {}).get(split, {}) if isinstance(report, dict) else {}
    texts = [str(n) for n in found.get("notes", [])]
    texts += [f"pair dropped, identical texts: {p}" for p in found.get("pairs_dropped_identical", [])]
    texts += [f"low word overlap (Jaccard {p.get('jaccard')}): {p.get('pair')}" for p in found.get("low_overlap_pairs", [])
              if isinstance(p, dict)]
    out = {}
    for text in texts:
        for batch, name, line in REFERENCE.findall(text):
            out.setdefault(batch or f"{name}:{line}", []).append(text)
    return out


def pair_checks(before: dict, after: dict) -> list:
    """What the viewer itself finds suspicious in an edit."""
    changed = [f for f in before if before[f] != after[f]]
    if not changed:
        return ["identical texts"]
    notes = []
    if all(before[f].lower() == after[f].lower() for f in changed):
        notes.append("case-only edit")
    if len(changed) > 1 and len(before) > 1:
        notes.append(f"edit changed {' and '.join(changed)}")
    return notes


def pair_rows(store: PairStore, raw: Store, split: str, limit: int, predictions: dict | None) -> list:
    """One dict per pair (the first `limit`): sides, diff, labels, kind, remarks, predictions."""
    view = store[split]
    columns = view.examples
    pairs, kinds = view.pairs, view.pair_kinds
    remarks = remarks_by_reference(store.report, split)
    references = _references(columns)
    regions = {"boxes": raw.regions["boxes"], "image_id": raw.regions["image_id"][:]} \
        if store.input_kind == "regions" else None
    rows = []
    for p in range(min(limit, len(pairs))):
        o, e = (int(i) for i in pairs[p])
        before, after = row_fields(raw, columns, o), row_fields(raw, columns, e)
        diff = {f: word_diff(before[f], after[f]) for f in before}
        row = {"id": p, "kind": str(kinds[p]), "rows": (o, e), "ids": (str(columns["id"][o]), str(columns["id"][e])),
               "labels": (label_text(raw, columns, o), label_text(raw, columns, e)),
               "diff": diff, "edited": [f for f in before if before[f] != after[f]],
               "remarks": pair_checks(before, after) + sorted({r for i in (o, e) for ref in references[i]
                                                               for r in remarks.get(ref, [])})}
        if regions is not None:
            row["regions"] = _masked(columns, regions, o, e)
        if predictions is not None:
            row["predictions"] = [[m[o] for m in predictions["members"]], [m[e] for m in predictions["members"]],
                                  predictions["ensemble"][o], predictions["ensemble"][e]]
            row["correct"] = predictions["correct"][p]
        rows.append(row)
    return rows


def _references(columns) -> list:
    """Each row's names in build reports: its id (`file:line`) and its `batch_id N`."""
    ids = [str(i) for i in columns["id"]]
    batches = [f"batch_id {b}" for b in columns["batch_id"]] if "batch_id" in columns else [None] * len(ids)
    return [{i, b} - {None} for i, b in zip(ids, batches)]


def _masked(columns, regions: dict, o: int, e: int) -> dict:
    """The regions the counterfactual masks (kept in the original, not in the edit), with boxes."""
    image_row = int(columns["image_row"][o])
    keep_o, keep_e = columns["region_mask"][o], columns["region_mask"][e]
    masked = np.flatnonzero(keep_o & ~keep_e)
    boxes = regions["boxes"][image_row]
    return {"image_id": int(regions["image_id"][image_row]), "masked": masked.tolist(),
            "boxes": [[round(float(v), 1) for v in boxes[i]] for i in masked], "all_boxes": len(boxes)}


def label_counts(store: PairStore, columns, most: int = 12) -> dict:
    """{class: rows} of the most frequent classes (multi-label: rows where the class is on; soft
    VQA answers: none, the answer vocabulary is thousands long)."""
    names = store.class_names
    if store.label_kind == "soft":
        return {}
    labels = np.asarray(columns["label"])
    counts = labels.sum(0) if store.label_kind == "multilabel" else np.bincount(labels, minlength=len(names))
    top = np.argsort(-counts, kind="stable")[:most]
    return {names[c]: int(counts[c]) for c in top if counts[c]}


def summary(store: PairStore) -> dict:
    """Splits (examples, originals, pairs by kind, labels), the build, its report, provenance, digest."""
    splits = {}
    for name in store.splits:
        view = store[name]
        columns = view.examples
        splits[name] = {"examples": len(view), "originals": int((~columns["is_counterfactual"]).sum()),
                        "pairs": dict(Counter(view.pair_kinds.astype(str).tolist())),
                        "labels": label_counts(store, columns)}
    return {"task": store.task, "input_kind": store.input_kind, "label_kind": store.label_kind,
            "classes": len(store.class_names), "digest": store.digest, "build": store.build,
            "report": store.report, "sources": store.sources, "splits": splits}


def image_for(images: Path, image_id: int) -> dict | None:
    """{uri, width, height} of the image named by its id (`<id>.jpg|png`, or COCO's `*_<12-digit
    id>.jpg`) as a data: URI; None when there is none (or it cannot be read)."""
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415  (the build extra's)
    for pattern in (f"{image_id}.jpg", f"{image_id}.png", f"*_{image_id:012d}.jpg"):
        found = sorted(images.glob(pattern))
        if found:
            try:
                with Image.open(found[0]) as image:
                    width, height = image.size
            except (OSError, UnidentifiedImageError):
                return None
            kind = "png" if found[0].suffix == ".png" else "jpeg"
            return {"uri": f"data:image/{kind};base64," + base64.b64encode(found[0].read_bytes()).decode(),
                    "width": width, "height": height}
    return None


def build_view(store_path, out, split: str | None = None, predictions=None, limit: int = 2000, images=None,
               force: bool = False, allow_external: bool = False) -> dict:
    """Write the page; returns {split, pairs, shown, bytes}. `predictions`: a page `cftrain eval
    --predictions` wrote (each row's predictions, each pair's badge)."""
    store_path, out = Path(store_path), Path(out)
    inputs = [p for p in (store_path, predictions, images) if p is not None]
    check_output(out, "html", force, inputs=inputs)
    with Store(store_path, allow_external) as peek:
        regions = peek.input_kind == "regions"
    # the page shows what the store says: its digest checked first (region features aside: gigabytes)
    check_store(store_path, digest=not regions, allow_external=allow_external)
    if limit < 1:
        raise UserError(f"--limit {limit}: must be at least 1")
    with PairStore(store_path, check=False, allow_external=allow_external) as store, \
            Store(store_path, allow_external) as raw:
        split = split or ("train" if "train" in store.splits else store.splits[0])
        if split not in store.splits:
            raise UserError(f"--split {split}: {store_path} has splits {', '.join(store.splits)}")
        source = predictions
        if predictions is not None:
            predictions = read_predictions(source, store.digest, split, len(store[split]), len(store[split].pairs))
        rows = pair_rows(store, raw, split, limit, predictions)
        if images is not None:
            for row in rows:
                if "regions" in row:
                    row["regions"]["image"] = image_for(Path(images), row["regions"]["image_id"])
        total = len(store[split].pairs)
        text = page(summary(store), split, rows, total, str(store_path), str(source) if source else None,
                    predictions and predictions["consistency"], predictions and predictions["columns"])
    write_page(out, "html", text, force, inputs=inputs)
    return {"split": split, "pairs": total, "shown": len(rows), "bytes": len(text.encode())}


