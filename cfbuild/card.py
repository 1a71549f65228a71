"""What an exported store carries beside its tables (`cfbuild export`): `README.md`, the Hugging
Face dataset card (YAML header: license, task_categories, language, size_categories, pretty_name,
and for parquet the `configs` mapping splits to files; a body saying what the pairs are, how they
were built, from which sources, with counts and citations), and `croissant.json` (MLCommons
Croissant 1.1, JSON-LD: each file with its sha256, record sets for examples and pairs, and the
Responsible-AI fields the store can fill). Both come from the store's own attributes: its build
record, its sources with their licences and citations (`cfbuild.provenance`), its report.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import numpy as np

from cfbuild.provenance import PROJECT_CITATION, source_terms
from cfpairs import __version__
from cfpairs.writer import file_sha256

CROISSANT_VERSION = "http://mlcommons.org/croissant/1.1"
CONTEXT = {  # Croissant 1.1's JSON-LD context, as mlcroissant writes it
    "@language": "en", "@vocab": "https://schema.org/", "arrayShape": "cr:arrayShape", "citeAs": "cr:citeAs",
    "column": "cr:column", "conformsTo": "dct:conformsTo", "containedIn": "cr:containedIn",
    "cr": "http://mlcommons.org/croissant/", "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"}, "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/", "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"}, "extract": "cr:extract", "field": "cr:field",
    "fileProperty": "cr:fileProperty", "fileObject": "cr:fileObject", "fileSet": "cr:fileSet", "format": "cr:format",
    "includes": "cr:includes", "isArray": "cr:isArray", "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath", "key": "cr:key", "md5": "cr:md5", "parentField": "cr:parentField", "path": "cr:path",
    "recordSet": "cr:recordSet", "references": "cr:references", "regex": "cr:regex", "repeated": "cr:repeated",
    "replace": "cr:replace", "samplingRate": "cr:samplingRate", "sc": "https://schema.org/",
    "separator": "cr:separator", "source": "cr:source", "subField": "cr:subField", "transform": "cr:transform"}
HF_LICENSES = {"apache-2.0": "apache-2.0", "mit": "mit", "cc by 4.0": "cc-by-4.0", "cc-by-4.0": "cc-by-4.0",
               "cc by-sa 4.0": "cc-by-sa-4.0", "cc0": "cc0-1.0", "bsd-3-clause": "bsd-3-clause"}
LICENSE_URLS = {"apache-2.0": "https://www.apache.org/licenses/LICENSE-2.0", "mit": "https://opensource.org/license/mit",
                "cc-by-4.0": "https://creativecommons.org/licenses/by/4.0/",
                "cc-by-sa-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
                "cc0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
                "bsd-3-clause": "https://opensource.org/license/bsd-3-clause"}
TASKS = {"text": "text-classification", "text_pair": "text-classification", "regions": "visual-question-answering"}
PAIRS_FOLDER = "pairs"


def hf_license(text: str) -> str:
    """The Hub's identifier of a licence statement ("other" for one it has none for, "unknown")."""
    key = text.strip().lower()
    if key in ("", "unknown"):
        return "unknown"
    return HF_LICENSES.get(key) or next((v for k, v in HF_LICENSES.items() if key.startswith(k + " ")
                                         or key.startswith(k + "(") or key == k), "other")


def dataset_license(terms: list) -> tuple[str, str]:
    """(the Hub's identifier, the statement) of the sources' licences together."""
    statements = sorted({t["license"] for t in terms})
    ids = {hf_license(s) for s in statements}
    if "unknown" in ids:
        return "unknown", "; ".join(statements)
    return (ids.pop() if len(ids) == 1 else "other"), "; ".join(statements)


def size_category(rows: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                        (10_000_000, "1M<n<10M")):
        if rows < limit:
            return name
    return "10M<n<100M"


def split_counts(store) -> dict:
    """{split: {rows, counterfactuals, pairs, pair_kinds: {kind: n}, labels: {class: n}}}."""
    out = {}
    for name in store.splits:
        view = store[name]
        kinds = [str(k) for k in view.pair_kinds]
        out[name] = {"rows": len(view), "counterfactuals": int(np.asarray(view.examples["is_counterfactual"]).sum()),
                     "pairs": len(view.pairs), "pair_kinds": {k: kinds.count(k) for k in sorted(set(kinds))},
                     "keep_pairs": int((view.pair_relations == "keep").sum()),
                     "labels": _label_counts(store, view)}
    return out


def _label_counts(store, view) -> dict:
    names = store.class_names
    if store.label_kind in ("binary", "multiclass"):
        label = np.asarray(view.examples["label"]).astype(np.int64)
        return {names[i]: int((label == i).sum()) for i in range(len(names))}
    if store.label_kind == "multilabel":
        label = np.asarray(view.examples["label"])
        return {names[i]: int(label[:, i].sum()) for i in range(len(names))}
    return {}  # soft answers: thousands of classes, counted by the store's report


# ---------------------------------------------------------------- README.md


def card(store, to: str, files: dict, pair_files: dict) -> str:
    """README.md: the Hub's YAML header and a body, for an export `to` parquet or hf."""
    counts, terms = split_counts(store), source_terms(store.sources)
    license_id, statement = dataset_license(terms)
    header = {"license": license_id, **({"license_name": "see-sources", "license_details": statement}
                                        if license_id == "other" else {}),
              "pretty_name": f"{store.task}: counterfactual pairs (cfpairs)",
              "task_categories": [TASKS.get(store.input_kind, "image-classification" if store.task == "coco"
                                            else "tabular-classification")],
              "size_categories": [size_category(sum(c["rows"] for c in counts.values()))],
              "tags": ["counterfactual", "contrast-sets", "cfpairs"]}
    if store.input_kind in ("text", "text_pair", "regions") and all(t["manifest"] for t in terms):
        header["language"] = ["en"]
    if to == "parquet":
        header["configs"] = [{"config_name": "default", "default": True,
                              "data_files": [{"split": s, "path": p} for s, p in files.items()]},
                             {"config_name": "pairs", "data_files": [{"split": s, "path": p}
                                                                    for s, p in pair_files.items()]}]
    return "---\n" + _yaml(header) + "---\n\n" + _body(store, counts, terms, statement, to)


def _yaml(value, indent: int = 0) -> str:
    """YAML for the header's plain shapes (strings JSON-quoted: valid YAML, nothing interpreted)."""
    pad, lines = " " * indent, []
    for key, item in value.items():
        if isinstance(item, list):
            lines.append(f"{pad}{key}:")
            for entry in item:
                if isinstance(entry, dict):
                    first, *rest = _yaml(entry, indent + 2).splitlines()
                    lines.append(f"{pad}- {first.strip()}")
                    lines += [f"{pad}  {line[indent + 2:]}" if line.startswith(" " * (indent + 2)) else line
                              for line in rest]
                else:
                    lines.append(f"{pad}- {json.dumps(entry)}")
        elif isinstance(item, dict):
            lines.append(f"{pad}{key}:")
            lines.append(_yaml(item, indent + 2).rstrip("\n"))
        else:
            lines.append(f"{pad}{key}: {json.dumps(item)}")
    return "\n".join(lines) + "\n"


def _body(store, counts: dict, terms: list, statement: str, to: str) -> str:
    build = store.build or {}
    lines = [f"# {store.task}: counterfactual pairs", "",
             f"Examples of task `{store.task}` ({store.input_kind} inputs, {store.label_kind} labels: "
             f"{', '.join(store.class_names[:12])}{' ...' if len(store.class_names) > 12 else ''}) with their "
             "counterfactuals: minimally different inputs whose label differs. Each pair joins an original "
             "and one counterfactual of it (`pair_id` groups an original with all of its counterfactuals; "
             "`pair_kind` says which edit made it; a pair's `relation` is `flip` when the edit changes the label "
             "and `keep` when it should not matter, e.g. a swapped identity term)" +
             ("; the `pairs` config lists them one per row" if to == "parquet" else "; `pairs/` lists them one per row")
             + ".", "",
             "## How it was built", "",
             f"`{build.get('command', 'unknown')}` of cfpairs {build.get('version', '?')}, with "
             f"{_parameters(build)}. Store content digest `{store.digest}`.", "",
             "| source file | sha256 | licence | citation |", "|---|---|---|---|"]
    for t in terms:
        lines.append(f"| {t['file']} | `{str(t['sha256'])[:16]}...` | {t['license']} | {t['citation']} |")
    lines += ["", f"Licence of this export: {statement or 'unknown'} (the sources' terms apply; nobody stated a "
              "licence where it says unknown).", "", "## Splits", "",
              "| split | rows | counterfactuals | pairs | keep pairs | pair kinds | labels |",
              "|---|---:|---:|---:|---:|---|---|"]
    for split, c in counts.items():
        kinds = ", ".join(f"{k} {n}" for k, n in c["pair_kinds"].items()) or "-"
        labels = ", ".join(f"{k} {n}" for k, n in c["labels"].items()) or "-"
        lines.append(f"| {split} | {c['rows']} | {c['counterfactuals']} | {c['pairs']} | {c['keep_pairs']} | {kinds} | "
                     f"{labels} |")
    remarks = _remarks(store)
    if remarks:
        lines += ["", "## The builder's remarks", "", *[f"- {r}" for r in remarks]]
    lines += ["", "## Citation", "", *[f"- {c}" for c in sorted({t['citation'] for t in terms} - {"unknown"})],
              f"- {PROJECT_CITATION}", ""]
    return "\n".join(lines)


def _parameters(build: dict) -> str:
    settings = {**(build.get("parameters") or {}), **(build.get("settings") or {})}
    shown = [f"`{k}={json.dumps(v)}`" for k, v in sorted(settings.items()) if v not in (None, [], "", False)]
    return ", ".join(shown) or "its defaults"


def _remarks(store, limit: int = 20) -> list:
    """The build report's notes, per split (the first `limit`), and the splits it could not build."""
    report, out = store.report or {}, []
    if report.get("missing_splits"):
        out.append(f"splits not built (their source files were absent): {', '.join(report['missing_splits'])}")
    for split, found in (report.get("splits") or {}).items():
        notes = found.get("notes") or []
        out += [f"{split}: {note}" for note in notes[:limit]]
        if len(notes) > limit:
            out.append(f"{split}: {len(notes) - limit} more notes in the store's report")
    return out


# ---------------------------------------------------------------- croissant.json


def croissant(store, folder: Path, to: str, files: dict, pair_files: dict) -> dict:
    """Croissant 1.1 metadata of the exported folder: its files (sha256 each), record sets for the
    examples and, for parquet, the pairs, and the RAI fields the store can fill."""
    terms = source_terms(store.sources)
    license_id, statement = dataset_license(terms)
    build = store.build or {}
    every = sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.name != "croissant.json")
    distribution = [{"@type": "cr:FileObject", "@id": str(p.relative_to(folder)), "name": str(p.relative_to(folder)),
                     "contentUrl": str(p.relative_to(folder)), "encodingFormat": _encoding(p),
                     "sha256": file_sha256(p)} for p in every]
    homepage = next((t["homepage"] for t in terms if t.get("homepage")), None)
    out = {"@context": CONTEXT, "@type": "sc:Dataset", "name": f"{store.task}-counterfactual-pairs",
           "description": f"Examples of task {store.task} with their counterfactuals (minimally different inputs "
                          f"whose label differs), built by cfpairs {build.get('version', '?')} "
                          f"({build.get('command', 'unknown')}).",
           "conformsTo": CROISSANT_VERSION,
           "citeAs": " ".join([*sorted({t["citation"] for t in terms} - {"unknown"}), PROJECT_CITATION]),
           "creator": {"@type": "sc:Organization", "name": "cfpairs"},
           "datePublished": datetime.date.today().isoformat(),
           "keywords": ["counterfactual", "contrast sets", store.task],
           "license": LICENSE_URLS.get(license_id, statement or "unknown"),
           "url": homepage or f"urn:sha256:{store.digest}", "version": "1.0.0",
           "rai:dataCollection": f"Built from {len(terms)} source file(s) by `{build.get('command', 'unknown')}` "
                                 f"(cfpairs {build.get('version', '?')}); each file pinned by sha256.",
           "rai:dataCollectionRawData": "; ".join(f"{t['file']} (sha256 {t['sha256']}; {t['license']})" for t in terms),
           "rai:dataPreprocessingProtocol": [f"Build parameters: {_parameters(build)}.",
                                             "Texts tokenised with spaCy's blank English tokenizer; token ids index "
                                             "the store's vocabulary." if store.input_kind in ("text", "text_pair")
                                             else "Inputs as the source gives them."],
           "rai:dataLimitations": [*(_remarks(store, limit=5) or ["The builder made no remarks."]),
                                   "Counterfactuals are edits of the originals: they cover the edits their authors "
                                   "chose, not every way the label could change."],
           "distribution": distribution}
    if to == "parquet":
        out["recordSet"] = [_record_set(store, "examples", files), _pairs_record_set(pair_files)]
    return out


def _encoding(path: Path) -> str:
    return {".parquet": "application/x-parquet", ".json": "application/json", ".md": "text/markdown",
            ".arrow": "application/vnd.apache.arrow.file"}.get(path.suffix, "application/octet-stream")


def _field(record: str, name: str, kind: str, file_set: str, description: str = "") -> dict:
    return {"@type": "cr:Field", "@id": f"{record}/{name}", "name": name, "dataType": kind,
            **({"description": description} if description else {}),
            "source": {"fileSet": {"@id": file_set}, "extract": {"column": name}}}


def _file_set(name: str, includes: list) -> dict:
    return {"@type": "cr:FileSet", "@id": name, "name": name, "encodingFormat": "application/x-parquet",
            "includes": includes}


def _record_set(store, name: str, files: dict) -> dict:
    fields = [_field(name, "id", "sc:Text", "examples-files", "the row's id in its source"),
              _field(name, "is_counterfactual", "sc:Boolean", "examples-files"),
              _field(name, "pair_id", "sc:Integer", "examples-files", "shared by an original and its "
                     "counterfactuals; -1 when unpaired"),
              _field(name, "pair_kind", "sc:Text", "examples-files")]
    for prefix in {"text": ("",), "text_pair": ("premise_", "hypothesis_")}.get(store.input_kind, ()):
        fields.append(_field(name, f"{prefix}text", "sc:Text", "examples-files"))
    if store.label_kind in ("binary", "multiclass"):
        fields.append(_field(name, "label", "sc:Integer", "examples-files",
                             f"class index: {', '.join(store.class_names[:20])}"))
    return {"@type": "cr:RecordSet", "@id": name, "name": name, "field": fields}


def _pairs_record_set(pair_files: dict) -> dict:
    return {"@type": "cr:RecordSet", "@id": "pairs", "name": "pairs",
            "field": [_field("pairs", "original_id", "sc:Text", "pairs-files"),
                      _field("pairs", "counterfactual_id", "sc:Text", "pairs-files"),
                      _field("pairs", "kind", "sc:Text", "pairs-files"),
                      _field("pairs", "relation", "sc:Text", "pairs-files", "flip: the edit changes the label; "
                             "keep: it should not matter")]}


def file_sets(to: str, files: dict, pair_files: dict) -> list:
    """The FileSets a parquet export's record sets read, each listing its files (a glob such as
    `*.parquet` would reach into `pairs/`)."""
    return [_file_set("examples-files", list(files.values())), _file_set("pairs-files", list(pair_files.values()))] \
        if to == "parquet" else []


def write_card_files(store, folder: Path, to: str, files: dict, pair_files: dict) -> None:
    """README.md first (croissant.json lists it with its sha256), then croissant.json."""
    (Path(folder) / "README.md").write_text(card(store, to, files, pair_files))
    metadata = croissant(store, folder, to, files, pair_files)
    metadata["distribution"] += file_sets(to, files, pair_files)
    (Path(folder) / "croissant.json").write_text(json.dumps(metadata, indent=1, ensure_ascii=False) + "\n")


__all__ = ["card", "croissant", "dataset_license", "hf_license", "write_card_files", "__version__"]
