"""What every view shares: the records' task, metric and store, and a record's seed."""

from __future__ import annotations

from cfpairs.errors import UserError

VIEWS = ("table", "sweep", "curve")


def common_of(records: list, what: str) -> dict:
    """Task, metric and store digest shared by every record (runs of other stores never mix)."""
    if not records:
        raise UserError(f"{what}: no finished runs found")
    digests = {r["config"].get("store_digest") or r["metrics"].get("store_digest") for r in records}
    if len(digests) > 1:
        raise UserError(f"{what}: runs of {len(digests)} different stores (content digests); collect them apart")
    first = records[0]
    return {"task": first["metrics"]["task"], "metric": first["metrics"]["metric"],
            "store": first["config"].get("store"),
            "input_kind": first["config"].get("store_signature", {}).get("input_kind")}


def seed_of(record: dict):
    return record["labels"].get("seed", record["config"].get("seed"))

