"""Names and shapes of the pair store, format version 3 (docs/STORE.md): part of `cfpairs.store`."""

from __future__ import annotations

import re

import h5py

from cfpairs.label_kinds import LABEL_KINDS as _LABEL_KINDS

FORMAT = "cfpairs"
FORMAT_VERSION = 3               # what the writer writes
READABLE_VERSIONS = (1, 2, 3)    # format 1: format 2's layout, its digest over datasets only; 3 adds pairs/relation
RELATIONS = ("flip", "keep")     # a pair's relation: the edit changes the label (flip) or should not matter (keep)
INPUT_KINDS = ("text", "text_pair", "vector", "regions")
LABEL_KINDS = tuple(_LABEL_KINDS)
TOKEN_FIELDS = {
    "text": ("",),
    "text_pair": ("premise_", "hypothesis_"),
    "vector": (),
    "regions": ("",),
}
EXTRA_INPUT_FIELDS = {"vector": ("x",), "regions": ("image_row", "region_mask")}
SPLIT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
RESERVED_GROUPS = ("vocab", "regions")
STR = h5py.string_dtype("utf-8")


def required_fields(input_kind: str, label_kind: str) -> tuple[str, ...]:
    """Example datasets every split of a store of these kinds must hold."""
    fields = ["id", "is_counterfactual", *_LABEL_KINDS[label_kind].fields]
    fields += EXTRA_INPUT_FIELDS.get(input_kind, ())
    for prefix in TOKEN_FIELDS[input_kind]:
        fields += [f"{prefix}text", f"{prefix}tokens", f"{prefix}length"]
    return tuple(fields)


def model_input_fields(input_kind: str) -> tuple[str, ...]:
    """The numeric example datasets a model reads (texts stay behind: tokens carry them)."""
    fields = []
    for prefix in TOKEN_FIELDS[input_kind]:
        fields += [f"{prefix}tokens", f"{prefix}length"]
    return tuple(fields) + EXTRA_INPUT_FIELDS.get(input_kind, ())
