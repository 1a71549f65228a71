"""The table (the paper's Table 3): one row per method, mean ± s.e. over seeds, per split, subset,
pair consistency and transfer column."""

from __future__ import annotations

import json

from cftrain.columns import COLUMNS
from cftrain.methods import METHODS, method
from cftrain.metrics import mean_se
from cftrain.presets import identity
from cftrain.references import REFERENCES
from cftrain.views.common import common_of, seed_of, store_of, unverified_note


def _row_groups(records: list) -> list:
    """Records grouped into rows: same options but the seed. Rows in the methods' order, then as found."""
    groups = {}
    for record in records:  # the store's digest is part of the identity; its verification too
        key = json.dumps({**{k: v for k, v in identity(record["config"]).items() if k not in ("seed", "fraction_seed")},
                          "store_verified": store_of(record)[1]}, sort_keys=True)
        groups.setdefault(key, []).append(record)
    order = list(METHODS)
    rows = sorted(groups.values(), key=lambda rs: order.index(rs[0]["config"]["mode"])
                  if rs[0]["config"]["mode"] in order else len(order))
    return rows


def _distinguishing(rows: list) -> list:
    """For each row, the options that set it apart from other rows of the same mode ("" when alone)."""
    out = []
    for rs in rows:
        config = identity(rs[0]["config"])
        twins = [identity(o[0]["config"]) for o in rows if o is not rs and o[0]["config"]["mode"] == config["mode"]]
        keys = sorted({k for t in twins for k in config if t.get(k) != config.get(k)} -
                      {"seed", "fraction_seed", "store_digest"})
        out.append(", ".join(f"{k}={config[k]}" for k in keys))
    return out


def table_view(records: list, seeds: list | None = None, references: list | None = None) -> dict:
    """table.json: one row per group of runs that differ only by seed; with `seeds` (or several
    seeds in a row), every cell the mean and standard error over seeds. Runs of different stores,
    or of a store they did not verify, are never merged: their rows say so. `references`: the
    reference fits (`cftrain.reference_rows.collect_references`), rows of their own block after
    the methods', each one deterministic fit (n=1)."""
    common = common_of(records, "table", one_store=False)
    rows = []
    groups = _row_groups(records)
    for group, extra in zip(groups, _distinguishing(groups)):
        group = sorted(group, key=lambda r: (seed_of(r) is None, seed_of(r) or 0))
        labels_seeds = [r["labels"].get("seed") for r in group]
        with_seeds = seeds is not None or len(group) > 1 or labels_seeds != [None]
        row = table_row(group[0]["config"]["mode"], common["input_kind"], common["metric"],
                        [r["metrics"] for r in group], [seed_of(r) for r in group] if with_seeds else None,
                        [r.get("evals", {}) for r in group])
        if extra:
            row["name"] += f" ({extra})"
        row["store_digest"], row["store_verified"] = store_of(group[0])
        rows.append(row)
    mixed = 0 < common["unverified"] < len(records)  # all unverified: the caption says it once
    for row in rows:
        row["name"] += _store_tag(row, len(common["stores"]) > 1, mixed)
    digests = set(common["stores"]) | {r["reference"]["store_digest"] for r in references or []}
    order = list(REFERENCES)
    for found in sorted(references or [], key=lambda f: (
            order.index(f["reference"]["reference"]), f["reference"]["trained_on"] != "augmented",
            f["reference"]["store_digest"])):
        row = reference_row(found)
        row["name"] += _store_tag(row, len(digests) > 1, False)
        rows.append(row)
    with_seeds = seeds is not None or any(r["labels"].get("seed") is not None for r in records)
    used = sorted({seed_of(r) for r in records if seed_of(r) is not None}) if with_seeds else None
    return {"task": common["task"], "store": common["store"], "stores": common["stores"],
            "unverified": common["unverified"], "runs": len(records), "metric": common["metric"],
            "seeds": seeds if seeds is not None else used, "rows": rows}


def reference_row(found: dict) -> dict:
    """A reference fit's row: its metrics and transfers as a one-seed row's, in the reference block."""
    record, metrics = found["reference"], found["metrics"]
    trained = "without edited data" if record["trained_on"] == "original" else \
        "with edited data" if record.get("edited_rows") else ""
    name = f"{record.get('row_name') or record['reference']}" + (f" ({trained})" if trained else "")
    return {"name": name, "mode": record["trained_on"], "block": "reference", "reference": record["reference"],
            "trained_on": record["trained_on"], "chosen": {record.get("parameter") or "value": record.get("chosen")},
            "best_epoch": 0, "splits": metrics["splits"], "consistency": metrics.get("consistency", {}),
            "alignment": {}, "columns": metrics.get("columns", {}),
            "store_digest": record["store_digest"], "store_verified": record["store_verified"],
            "transfers": {n: {"splits": e["splits"], "consistency": e.get("consistency", {})}
                          for n, e in found.get("evals", {}).items()}}


def _store_tag(row: dict, several: bool, mixed: bool) -> str:
    tags = ([f"store {str(row['store_digest'])[:8]}"] if several else []) + \
        (["store not verified"] if mixed and not row["store_verified"] else [])
    return f" [{'; '.join(tags)}]" if tags else ""


def table_row(name: str, input_kind: str, metric: str, results: list, seeds: list | None,
              evals: list | None = None) -> dict:
    """One row: its run's metrics, or with seeds the mean over seeds of every split, group, pair
    consistency and alignment (with `stderr` beside each mean) and each seed's run under `runs`.
    `evals`: each run's transfer evaluations ({name: cftrain eval's output}), one column each."""
    row = {"name": method(name).table_row_name(input_kind) if name in METHODS else name, "mode": name}
    evals = evals or [{} for _ in results]
    names = list(dict.fromkeys(n for e in evals for n in e))
    if seeds is None:
        only = results[0]
        return {**row, "best_epoch": only["best_epoch"], "splits": only["splits"],
                "consistency": only.get("consistency", {}), "alignment": only.get("alignment", {}),
                "columns": only.get("columns", {}),
                "transfers": {n: {"splits": evals[0][n]["splits"], "consistency": evals[0][n].get("consistency", {})}
                              for n in names}}
    alignment = {split: {"cosine": mean_se((r.get("alignment", {}).get(split, {}).get("cosine") for r in results),
                                           digits=4)["mean"]}
                 for split in results[0].get("alignment", {})}
    transfers = {}
    for n in names:
        found = [e[n] for e in evals if n in e]
        transfers[n] = {"splits": mean_groups([f["splits"] for f in found], metric),
                        "consistency": mean_groups([f.get("consistency", {}) for f in found], "consistency",
                                                   count="pairs")}
    return {**row, "best_epoch": [r["best_epoch"] for r in results], "splits": mean_groups(
                [r["splits"] for r in results], metric),
            "consistency": mean_groups([r.get("consistency", {}) for r in results], "consistency", count="pairs"),
            "alignment": alignment, "transfers": transfers, "columns": mean_columns(results),
            "runs": [{"seed": seed, "splits": r["splits"], "consistency": r.get("consistency", {}),
                      "columns": r.get("columns", {}),
                      "transfers": {n: e[n]["splits"] for n in e}} for seed, r, e in zip(seeds, results, evals)]}


def mean_groups(per_seed: list, key: str, count: str = "n") -> dict:
    """{split: {group: {count, key: mean, stderr, seeds}}}: the mean and standard error over seeds of
    each group's `key` in per-seed {split: {group: {count, key}}} (the first seed's layout)."""
    out = {}
    for split, groups in (per_seed[0] if per_seed else {}).items():
        out[split] = {}
        for group, values in groups.items():
            summary = mean_se(r.get(split, {}).get(group, {}).get(key) for r in per_seed)
            out[split][group] = {count: values[count], key: summary["mean"], "stderr": summary["stderr"],
                                 "seeds": summary["n"]}
    return out


def mean_columns(results: list) -> dict:
    """{column: {split: {n, value: mean, stderr, seeds}}} over the seeds' metrics (`cftrain.columns`);
    a run without the column (trained before it, no kept predictions) counts as a seed without it."""
    out = {}
    for name in dict.fromkeys(name for r in results for name in r.get("columns", {})):
        per_seed = [r.get("columns", {}).get(name, {}) for r in results]
        layout = next((cells for cells in per_seed if cells), None)
        if layout is None:  # computed, and no split has a value (a flip rate without keep pairs)
            continue
        out[name] = {}
        for split, cell in layout.items():
            summary = mean_se(cells.get(split, {}).get("value") for cells in per_seed)
            out[name][split] = {"n": cell["n"], "value": summary["mean"], "stderr": summary["stderr"],
                                "seeds": summary["n"]}
    return out


def table_columns(table: dict) -> list:
    """[(header, function of a row -> cell dict or None, value key)]: the paper's layout: every
    evaluated split and group (val first), each split's pair consistency, then each transfer set."""
    metric, rows, columns = table["metric"], table["rows"], []
    seen = lambda header: header in [c[0] for c in columns]
    for row in rows:
        for split, groups in row["splits"].items():
            for group, values in groups.items():
                header = f"{split} {group} (n={values['n']})"
                if split != "train" and not seen(header):
                    columns.append((header, lambda r, s=split, g=group: r["splits"].get(s, {}).get(g), metric))
    for row in rows:
        for split, kinds in row.get("consistency", {}).items():
            header = f"{split} consistency (pairs={kinds['all']['pairs']})" if "all" in kinds else None
            if header and split != "train" and not seen(header):
                columns.append((header, lambda r, s=split: r.get("consistency", {}).get(s, {}).get("all"),
                                "consistency"))
    for name, split, header in column_headers(rows):
        if not seen(header):
            columns.append((header, lambda r, n=name, s=split: r.get("columns", {}).get(n, {}).get(s), "value"))
    for row in rows:
        for name, found in row.get("transfers", {}).items():
            for split, groups in found["splits"].items():
                header = (name if len(found["splits"]) == 1 else f"{name} {split}") + \
                    f" (n={groups['all']['n']})"
                if not seen(header):
                    columns.append((header, lambda r, n=name, s=split:
                                    r.get("transfers", {}).get(n, {}).get("splits", {}).get(s, {}).get("all"), metric))
    return columns


def column_headers(rows: list) -> list:
    """[(column, split, header)] of the registered columns the rows hold (`cftrain.columns`), in the
    registry's order, each split but train; a column no longer registered keeps its name."""
    order = list(COLUMNS)
    names = sorted(dict.fromkeys(n for r in rows for n in r.get("columns", {})),
                   key=lambda n: order.index(n) if n in order else len(order))
    out = []
    for name in names:
        header = COLUMNS[name].header if name in COLUMNS else name
        for split in dict.fromkeys(s for r in rows for s in r.get("columns", {}).get(name, {})):
            if split != "train":
                out.append((name, split, f"{split} {header}"))
    return out


def column_caption(rows: list) -> str:
    """' ECE: what it is (lower is better).' for each registered column the rows hold."""
    names = dict.fromkeys(name for name, _, _ in column_headers(rows) if name in COLUMNS)
    return "".join(f" {COLUMNS[n].header}: {COLUMNS[n].what} ({COLUMNS[n].better} is better)." for n in names)


def format_table(table: dict) -> str:
    """Markdown: one row per method; columns as `table_columns` (metric in %, n in the header), then
    each split's alignment."""
    metric = table["metric"]
    columns = table_columns(table)
    aligned = list(dict.fromkeys(s for row in table["rows"] for s in row.get("alignment", {}) if s != "train"))
    header = "| method | " + " | ".join([c[0] for c in columns] + [f"{s} alignment" for s in aligned]) + " |"
    seeds = table.get("seeds")
    over = f"mean ± standard error over seeds {', '.join(map(str, seeds))}, " if seeds else \
        "one seed per row (n=1: no standard error), "
    lines = [f"Task `{table['task']}`, {metric} in %, {over}best epoch by val {metric}; consistency: pairs whose "
             "original and edit are both right, %; alignment: mean cos(g, t) over the split's pairs." +
             column_caption(table["rows"]), ""]
    if len(table.get("stores", [])) > 1:
        lines += [f"Runs of {len(table['stores'])} different stores (content digests "
                  f"{', '.join(d[:8] for d in table['stores'])}): each row names its store.", ""]
    lines += [*unverified_note(table, table.get("runs", 0)), header, "|---|" + "---:|" * (len(columns) + len(aligned))]
    methods = [row for row in table["rows"] if row.get("block") != "reference"]
    references = [row for row in table["rows"] if row.get("block") == "reference"]
    for row in methods:
        lines.append(_table_line(row, columns, aligned, seeds))
    if references:
        lines.append("| *reference (scikit-learn on the store's texts; one fit each, n=1)* |" +
                     " |" * (len(columns) + len(aligned)))
        lines += [_table_line(row, columns, aligned, seeds) for row in references]
    return "\n".join(lines)


def _table_line(row: dict, columns: list, aligned: list, seeds) -> str:
    reference = row.get("block") == "reference"
    cells = []
    for _, cell_of, key in columns:
        values = cell_of(row)
        if not values or values.get(key) is None:
            cells.append("-")
        else:
            se, n = values.get("stderr"), values.get("seeds")
            cells.append(f"{values[key]:.1f}" + (f" ± {se:.1f}" if se is not None else
                                                 " (n=1)" if reference or (n == 1 and seeds) else ""))
    for split in aligned:
        value = row.get("alignment", {}).get(split, {}).get("cosine")
        cells.append("-" if value is None else f"{value:.3f}")
    return f"| {row['name']} | " + " | ".join(cells) + " |"
