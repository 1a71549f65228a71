"""The run directory: the one place that writes and reads what a run leaves behind.

    RUN_DIR/config.json     every resolved option, and the store trained on
    RUN_DIR/history.jsonl   one line per epoch: task loss, GS term, GS rows, val metric, seconds
    RUN_DIR/metrics.json    the metric's name and, per split and group, {n, <metric>} in percent
    RUN_DIR/model.pt        what rebuilds the ensemble: model name, constructor arguments, frozen
                            word vectors' shape and sha256 (their values are in each state), and
                            the best state of every member; read with torch.load(weights_only=True)
    RUN_DIR/history.png     task loss, GS term and val metric per epoch (trained methods)
    RUN_DIR/predictions.npz per split and member, the scores the metrics were computed from, with
                            the targets and pairs (`cftrain.scores`): later columns need no retraining
"""

from __future__ import annotations

import hashlib
import json
import pickle
from contextlib import contextmanager
from pathlib import Path

import torch

from cfpairs.errors import UserError
from cfpairs.jsontext import strict_loads
from cfpairs.outputs import add_to_marker, read_marker, write_text_atomic
from cftrain.models import make_model
from cftrain.runschema import check_config, check_metrics
from cftrain.methods import METHODS
from cftrain.scores import FILE as SCORES
from cftrain.scores import read_scores, write_scores

CONFIG, HISTORY, METRICS, MODEL = "config.json", "history.jsonl", "metrics.json", "model.pt"


def strict_json(value) -> str:
    """JSON without NaN or Infinity (which are not JSON): a bug would fail here, not in a reader."""
    return json.dumps(value, indent=2, allow_nan=False)


def write_json_atomic(path: Path, value) -> None:
    write_text_atomic(Path(path), strict_json(value) + "\n")


def read_json_file(path: Path):
    """A JSON file of a run folder (a regular file; NaN and Infinity are not JSON)."""
    if path.is_symlink() or not path.is_file():
        raise UserError(f"{path}: not a regular file")
    try:
        return strict_loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{path}: not valid JSON ({' '.join(str(exc).split())[:120]})") from None


def _trains(mode) -> bool:
    return mode not in METHODS or METHODS[mode].trains


def tensor_sha256(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


class RunDir:
    def __init__(self, path):
        self.path = Path(path)

    # ---------------------------------------------------------------- writing

    def write_config(self, config: dict) -> None:
        write_json_atomic(self.path / CONFIG, config)

    def write_metrics(self, metrics: dict) -> None:
        write_json_atomic(self.path / METRICS, metrics)

    def write_scores(self, kept: dict, n_classes: int) -> None:
        write_scores(self.path / SCORES, kept, n_classes)

    def keep_scores(self, kept: dict, n_classes: int) -> None:
        """Predictions added to a finished run (`cftrain eval --keep`), listed in its folder's marker."""
        self.write_scores(kept, n_classes)
        if read_marker(self.path) is not None:
            add_to_marker(self.path, SCORES)

    def read_scores(self) -> dict | None:
        """{split: SplitScores}, or None for a run that kept no predictions (trained before they were kept)."""
        path = self.path / SCORES
        if not path.exists() and not path.is_symlink():
            return None
        if path.is_symlink() or not path.is_file():
            raise UserError(f"{path}: not a regular file (a link, a folder or a device)")
        return read_scores(path)

    @contextmanager
    def history(self):
        """A `log(line)` that appends one JSON line per epoch, readable while training runs."""
        with open(self.path / HISTORY, "w") as fh:
            def log(line: dict) -> None:
                fh.write(json.dumps(line, allow_nan=False) + "\n")
                fh.flush()
            yield log

    def save_model(self, members: list, model_name: str, kwargs: dict) -> None:
        frozen = members[0].frozen_vectors()
        torch.save({"model": model_name, "kwargs": kwargs,
                    "frozen_vectors": None if frozen is None else
                    {"shape": list(frozen.shape), "sha256": tensor_sha256(frozen)},
                    "members": [{k: v.cpu() for k, v in m.state_dict().items()} for m in members]},
                   self.path / MODEL)

    # ---------------------------------------------------------------- reading

    def read_json(self, name: str) -> dict:
        path = self.path / name
        if not path.is_file() and not path.is_symlink() and not path.exists():
            raise UserError(f"{self.path}: not a trained run ({name} is missing)")
        return read_json_file(path)  # a link, a folder or a FIFO under that name: "not a regular file"

    def read_config(self) -> dict:
        return check_config(self.read_json(CONFIG), self.path / CONFIG)

    def read_metrics(self) -> dict:
        return check_metrics(self.read_json(METRICS), self.path / METRICS)

    def check_trained(self) -> None:
        """A complete run directory of a trained model (what `cftrain eval` needs)."""
        if not self.path.is_dir():
            raise UserError(f"{self.path}: no such run directory")
        odd = [n for n in (CONFIG, METRICS, HISTORY, MODEL) if (self.path / n).is_symlink() or
               ((self.path / n).exists() and not (self.path / n).is_file())]
        if odd:
            raise UserError(f"{self.path / odd[0]}: not a regular file (a link, a folder or a device)")
        missing = [n for n in (CONFIG, METRICS, HISTORY, MODEL) if not (self.path / n).is_file()]
        config = self.read_config() if (self.path / CONFIG).is_file() else {}
        if missing and missing == [HISTORY, MODEL] and not _trains(config.get("mode")):
            raise UserError(f"{self.path}: a {config.get('mode')} run has no trained model to evaluate")
        if missing:
            raise UserError(f"{self.path}: incomplete run directory (missing {', '.join(missing)})")

    def load_members(self) -> list:
        """The trained ensemble, rebuilt from model.pt alone (weights only)."""
        path = self.path / MODEL
        if not path.is_file():
            raise UserError(f"{self.path}: not a trained run ({MODEL} is missing)")
        try:
            saved = torch.load(path, weights_only=True, map_location="cpu")
        except (RuntimeError, pickle.UnpicklingError, EOFError) as exc:
            raise UserError(f"{path}: not a readable checkpoint ({' '.join(str(exc).split())[:120]})") from None
        if not isinstance(saved, dict) or not {"members", "model", "kwargs", "frozen_vectors"} <= set(saved):
            raise UserError(f"{path}: no model constructor arguments (written by an older cftrain?); "
                            "train the run again")
        kwargs, frozen = dict(saved["kwargs"]), saved["frozen_vectors"]
        members = []
        for state in saved["members"]:
            if frozen is not None:  # shape now, values from the state
                kwargs["vectors"] = torch.zeros(frozen["shape"])
            model = make_model(saved["model"], **kwargs)
            try:
                model.load_state_dict(state)
            except RuntimeError as exc:
                raise UserError(f"{path}: the saved state does not fit model {saved['model']!r} "
                                f"({' '.join(str(exc).split())[:120]})") from None
            if frozen is not None and tensor_sha256(model.frozen_vectors()) != frozen["sha256"]:
                raise UserError(f"{path}: frozen word vectors differ from their recorded sha256")
            members.append(model)
        return members
