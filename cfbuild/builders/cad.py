"""Presets over `textpairs` for the CAD release (Kaushik et al.): IMDb sentiment and SNLI."""

from __future__ import annotations

from pathlib import Path

from cfbuild.builders.textpairs import PairedSplit
from cfpairs.errors import UserError
from cfbuild.manifest import SourceLedger
from cfbuild.sources.tables import read_table
from cfpairs.outputs import check_output
from cfbuild.text import jaccard, tokenize

SPLIT_FILES = {"train": "train", "val": "dev", "test": "test"}
SENTIMENT = {"Negative": 0, "Positive": 1}
SENTIMENT_CLASSES = ["negative", "positive"]
NLI_CLASSES = ["entailment", "neutral", "contradiction"]


def available_splits(cad_dir, pattern: str, wanted: list | None) -> tuple[list, list]:
    """Splits whose files exist, and the missing ones; a missing split in `wanted` is an error."""
    present, missing = [], []
    for split, stem in SPLIT_FILES.items():
        files = [Path(cad_dir) / p.format(stem) for p in pattern.split(",")]
        absent = [str(f) for f in files if not f.is_file()]
        if wanted and split not in wanted:
            continue
        if absent and wanted:
            raise UserError(f"split {split!r} was asked for but {absent[0]} does not exist")
        (missing if absent else present).append(split)
    return present, missing


def _label(table, column: str, row: int, mapping: dict) -> int:
    value = table.columns[column][row]
    if value not in mapping:
        raise UserError(f"{table.path}: line {table.line(row)}: unknown label {value!r} "
                        f"(expected one of {', '.join(mapping)})")
    return mapping[value]


def imdb_split(ledger: SourceLedger, split: str) -> PairedSplit:
    """Pairs of `sentiment/combined/paired/<split>_paired.tsv`, grouped by batch_id."""
    stem = SPLIT_FILES[split]
    table = read_table(ledger.check(f"sentiment/combined/paired/{stem}_paired.tsv"))
    table.require("Sentiment", "Text", "batch_id")
    groups: dict[str, list[int]] = {}
    for row, batch in enumerate(table.columns["batch_id"]):
        groups.setdefault(batch, []).append(row)
    originals = set()
    orig_path = Path(ledger.root) / f"sentiment/orig/{stem}.tsv"
    if orig_path.is_file():
        orig = read_table(ledger.check(f"sentiment/orig/{stem}.tsv"))
        orig.require("Text")
        originals = set(orig.columns["Text"])
    out = PairedSplit()
    if not orig_path.is_file():
        out.notes.append(f"{orig_path} absent: the first row of each pair is taken as the original")
    for batch, rows in groups.items():
        if len(rows) != 2:
            lines = ", ".join(str(table.line(r)) for r in rows)
            raise UserError(f"{table.path}: batch_id {batch!r} has {len(rows)} rows (lines {lines}); a pair needs 2")
        found = [r for r in rows if table.columns["Text"][r] in originals]
        if len(found) != 1:
            if orig_path.is_file():
                out.notes.append(f"batch_id {batch}: {'both' if found else 'neither'} rows found in "
                                 f"sentiment/orig/{stem}.tsv; the first row is taken as the original")
            found = [rows[0]]
        order = [found[0], rows[1] if found[0] == rows[0] else rows[0]]
        made = [out.add(f"{batch}:{role}", (table.columns["Text"][r],), _label(table, "Sentiment", r, SENTIMENT),
                        role == "edited", batch_id=batch, source_line=table.line(r))
                for r, role in zip(order, ("original", "edited"))]
        out.pairs.append((made[0], made[1], "edited", f"batch_id {batch}"))
    return out


def _norm(text: str) -> str:
    return " ".join(text.split())


def snli_split(ledger: SourceLedger, split: str) -> PairedSplit:
    """Row k of NLI/original is the original of rows 2k, 2k+1 of both revised files."""
    stem = SPLIT_FILES[split]
    original = read_table(ledger.check(f"NLI/original/{stem}.tsv"))
    edits = {kind: read_table(ledger.check(f"NLI/revised_{kind}/{stem}.tsv")) for kind in ("premise", "hypothesis")}
    for table in (original, *edits.values()):
        table.require("sentence1", "sentence2", "gold_label")
    for kind, table in edits.items():
        if len(table) != 2 * len(original):
            raise UserError(f"{table.path}: {len(table)} rows, expected twice the {len(original)} of {original.path}")
    out = PairedSplit()
    changed_other = []
    for k in range(len(original)):
        row = original.columns
        texts = (row["sentence1"][k], row["sentence2"][k])
        o = out.add(f"original:{original.line(k)}", texts, _label(original, "gold_label", k, _NLI), False)
        for kind, table in edits.items():
            for r in (2 * k, 2 * k + 1):
                edit = (table.columns["sentence1"][r], table.columns["sentence2"][r])
                kept = 1 if kind == "premise" else 0  # the sentence an edit of this kind keeps
                if edit[kept] != texts[kept]:
                    _check_aligned(table, r, original, k, texts, edit)
                    changed_other.append(f"revised_{kind} line {table.line(r)}")
                e = out.add(f"revised_{kind}:{table.line(r)}", edit, _label(table, "gold_label", r, _NLI), True)
                out.pairs.append((o, e, f"edited_{kind}", f"revised_{kind} line {table.line(r)}"))
    if changed_other:
        out.notes.append(f"{len(changed_other)} edits also changed the sentence their kind keeps "
                         f"(kept as examples and pairs): {', '.join(changed_other)}")
    return out


_NLI = {name: i for i, name in enumerate(NLI_CLASSES)}


def _check_aligned(table, r: int, original, k: int, texts: tuple, edit: tuple) -> None:
    """An edit sharing neither sentence (even loosely) with its original means misaligned files."""
    if any(_norm(a) == _norm(b) for a, b in zip(texts, edit)):
        return
    words = [[w for w in tokens if w.isalnum()] for tokens in tokenize([*texts, *edit])]
    overlap = max(jaccard(words[i], words[i + 2]) for i in range(2))  # punctuation would inflate it
    if overlap < 0.2:
        raise UserError(f"{table.path}: line {table.line(r)} shares neither sentence with its original "
                        f"({original.path} line {original.line(k)}): the files look misaligned")


def _build(kind: str, cad_dir, out, *, splits, max_tokens: int, vocab_size: int,
           allow_unverified: bool, force: bool) -> dict:
    from cfbuild.builders.textpairs import write_text_store

    check_output(out, "store", force, inputs=[cad_dir])  # before any work
    if not Path(cad_dir).is_dir():
        raise UserError(f"{cad_dir}: --cad-dir is not a folder")
    pattern = ("sentiment/combined/paired/{}_paired.tsv" if kind == "imdb" else
               "NLI/original/{0}.tsv,NLI/revised_premise/{0}.tsv,NLI/revised_hypothesis/{0}.tsv")
    present, missing = available_splits(cad_dir, pattern, splits)
    if "train" not in present:
        expected = ", ".join(p.format(SPLIT_FILES["train"]) for p in pattern.split(","))
        raise UserError(f"--cad-dir {cad_dir}: no {kind} training files; expected {expected} under it "
                        "(give the release's root folder, which holds sentiment/ and NLI/)")
    ledger = SourceLedger("cad", cad_dir, allow_unverified)
    reader = imdb_split if kind == "imdb" else snli_split
    paired = {name: reader(ledger, name) for name in present}
    params = {"max_tokens": max_tokens, "vocab_size": vocab_size, "splits": present,
              "allow_unverified_sources": allow_unverified}
    return write_text_store(out, task=kind, class_names=SENTIMENT_CLASSES if kind == "imdb" else NLI_CLASSES,
                            splits=paired, max_tokens=max_tokens, vocab_size=vocab_size,
                            command=f"cfbuild {kind}", parameters=params, sources=ledger.entries, force=force,
                            report={"missing_splits": missing})


def build_imdb(cad_dir, out, *, splits=None, max_tokens: int = 0, vocab_size: int = 20000,
               allow_unverified: bool = False, force: bool = False) -> dict:
    """The IMDb sentiment store from `sentiment/combined/paired` (pairs by batch_id).

    `max_tokens` defaults to 0 (whole reviews): trimmed to 32 tokens, 357 of the 1,703
    training pairs become identical and val accuracy stays far below the paper's (README).
    """
    return _build("imdb", cad_dir, out, splits=splits, max_tokens=max_tokens, vocab_size=vocab_size,
                  allow_unverified=allow_unverified, force=force)


def build_snli(cad_dir, out, *, splits=None, max_tokens: int = 32, vocab_size: int = 20000,
               allow_unverified: bool = False, force: bool = False) -> dict:
    """The SNLI store: each original with its two premise and two hypothesis edits."""
    return _build("snli", cad_dir, out, splits=splits, max_tokens=max_tokens, vocab_size=vocab_size,
                  allow_unverified=allow_unverified, force=force)
