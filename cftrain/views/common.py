"""What every view shares: the records' task, metric and store, and a record's seed."""

from __future__ import annotations

from cfpairs.errors import UserError

VIEWS = ("table", "sweep", "curve")


def store_of(record: dict) -> tuple:
    """(the store's content digest, whether the run verified it as it loaded it)."""
    return (record["config"].get("store_digest") or record["metrics"].get("store_digest"),
            record["config"].get("store_verified") is True)


def common_of(records: list, what: str, one_store: bool = True) -> dict:
    """Task, metric and store digests of the records: one task and metric; with `one_store`, one
    store (a sweep or a curve ranks runs against each other: runs of other stores never mix).
    `unverified`: how many runs did not verify their store's digest."""
    if not records:
        raise UserError(f"{what}: no finished runs found")
    digests = sorted({str(store_of(r)[0]) for r in records})
    if one_store and len(digests) > 1:
        raise UserError(f"{what}: runs of {len(digests)} different stores (content digests "
                        f"{', '.join(d[:8] for d in digests)}); collect them apart")
    kinds = sorted({f"{r['metrics']['task']} ({r['metrics']['metric']})" for r in records})
    if len(kinds) > 1:
        raise UserError(f"{what}: runs of {len(kinds)} tasks or metrics ({', '.join(kinds)}); collect them apart")
    first = records[0]
    return {"task": first["metrics"]["task"], "metric": first["metrics"]["metric"],
            "store": first["config"].get("store"), "stores": digests,
            "unverified": sum(not store_of(r)[1] for r in records),
            "input_kind": first["config"].get("store_signature", {}).get("input_kind")}


def unverified_note(common: dict, total: int) -> list:
    """A Markdown line when some runs did not verify their store (region stores without --verify)."""
    n = common.get("unverified", 0)
    if not n:
        return []
    return [f"Not verified: {n} of {total} runs did not check their store's content digest as they loaded it "
            "(region stores are verified with --verify).", ""]


def seed_of(record: dict):
    return record["labels"].get("seed", record["config"].get("seed"))

