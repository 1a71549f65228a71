"""`cftrain table` (every mode, one table like the paper's Table 3) and `cftrain eval` (a run on another store)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch

from cfbuild.errors import UserError
from cfbuild.store import Store
from cftrain.data import load_split
from cftrain.metrics import METRIC, ensemble_logits, split_metrics
from cftrain.models import make_model
from cftrain.presets import TABLE_MODES, RunConfig, resolve
from cftrain.train import run, truncate, write_json_atomic

ROW_NAMES = {
    "chance": "Chance (uniform random)",
    "shuffled": "Trained on shuffled labels",
    "original": "Trained without edited data",
    "augmented": "With edited data (augmentation)",
    "gs": "With edited data + GS",
    "gs-random": "With edited data + GS, random relations",
}
# VQA's Table 1 names its rows after the baseline model
REGIONS_ROW_NAMES = {"original": "Baseline (BUTD)", "augmented": "+ CF data", "gs": "+ CF data + GS",
                     "gs-random": "+ CF data + GS, random relations"}
PAPER_ORDER = ("chance", "shuffled", "original", "augmented", "gs", "gs-random")


def run_table(store_path, out_dir, modes=TABLE_MODES, **overrides) -> dict:
    """Run every mode into out_dir/<mode>/ and write table.json and table.md."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with Store(store_path) as store:
        task, input_kind, metric = store.task, store.input_kind, METRIC[store.label_kind]
    rows = []
    for mode in [m for m in PAPER_ORDER if m in modes]:
        metrics = run(store_path, out_dir / mode, resolve(task, input_kind, **{**overrides, "mode": mode}))
        names = {**ROW_NAMES, **(REGIONS_ROW_NAMES if input_kind == "regions" else {})}
        rows.append({"name": names[mode], "mode": mode, "best_epoch": metrics["best_epoch"],
                     "splits": metrics["splits"]})
    table = {"task": task, "store": str(store_path), "metric": metric, "rows": rows}
    write_json_atomic(out_dir / "table.json", table)
    (out_dir / "table.md").write_text(format_table(table) + "\n")
    return table


def format_table(table: dict) -> str:
    """Markdown: one row per method, columns split/group (accuracy %, n in the header)."""
    columns = []
    for row in table["rows"]:
        for split, groups in row["splits"].items():
            if split == "train":
                continue
            for group, values in groups.items():
                key = (split, group)
                if key not in [c[0] for c in columns]:
                    columns.append((key, values["n"]))
    metric = lambda values: next(v for k, v in values.items() if k != "n")
    header = "| method | " + " | ".join(f"{s} {g} (n={n})" for (s, g), n in columns) + " |"
    name = table.get("metric", "accuracy")
    lines = [f"Task `{table['task']}`, {name} in %, best epoch by val {name}.", "", header,
             "|---|" + "---:|" * len(columns)]
    for row in table["rows"]:
        cells = []
        for (split, group), _ in columns:
            values = row["splits"].get(split, {}).get(group)
            cells.append(f"{metric(values):.1f}" if values else "-")
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load_members(run_dir) -> tuple[list, dict]:
    """The trained ensemble of a run directory (weights only) and its config."""
    run_dir = Path(run_dir)
    if not (run_dir / "model.pt").is_file() or not (run_dir / "config.json").is_file():
        raise UserError(f"{run_dir}: not a trained run (needs config.json and model.pt)")
    config = json.loads((run_dir / "config.json").read_text())
    try:
        saved = torch.load(run_dir / "model.pt", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError) as exc:
        raise UserError(f"{run_dir / 'model.pt'}: not a readable checkpoint ({' '.join(str(exc).split())[:120]})") from None
    if not isinstance(saved, dict) or not {"members", "model", "kwargs"} <= set(saved):
        raise UserError(f"{run_dir / 'model.pt'}: no model constructor arguments (written by an older cftrain?); "
                        "train the run again")
    members = []
    for state in saved["members"]:
        kwargs = dict(saved["kwargs"])
        if config["embeddings"] and "embed.weight" in state:  # frozen vectors: shape now, values from the state
            kwargs["vectors"] = torch.zeros(state["embed.weight"].shape)
        model = make_model(saved["model"], **kwargs)
        model.load_state_dict(state)
        members.append(model)
    return members, config


def evaluate_run(run_dir, store_path, out=None) -> dict:
    """Metrics of a trained run on every split of another store (e.g. a transfer set)."""
    members, config = load_members(run_dir)
    with Store(store_path) as store:
        vocab_size = len(store.vocab or [])
        embed = getattr(members[0], "embed", None)
        if embed is not None and embed.num_embeddings != vocab_size:
            raise UserError(f"{store_path}: vocabulary of {vocab_size} entries, the run was trained on "
                            f"{embed.num_embeddings} (build it with cfbuild transfer --vocab-from)")
        scores = {}
        for name in store.splits:
            data = truncate(load_split(store, name), config.get("max_tokens"))
            scores[name] = split_metrics(ensemble_logits(members, data), data, store.label_kind)
        result = {"run": str(run_dir), "store": str(store_path), "task": store.task, "splits": scores}
    if out:
        write_json_atomic(Path(out), result)
    return result


__all__ = ["run_table", "format_table", "evaluate_run", "RunConfig"]
