"""Check source files against `data_manifests/<id>.json` and describe them for `sources`."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from cfpairs.errors import UserError
from cfpairs.store import describe_source


def load_manifest(manifest_id: str) -> dict:
    return json.loads(resources.files("data_manifests").joinpath(f"{manifest_id}.json").read_text())


class SourceLedger:
    """Collects the files a build reads; refuses ones that differ from the manifest.

    `allow_unverified` turns a mismatch (or a file the manifest does not list)
    into an entry marked `"verified": false` instead of an error.
    """

    def __init__(self, manifest_id: str, root, allow_unverified: bool = False):
        self.manifest = load_manifest(manifest_id)
        self.manifest_id = manifest_id
        self.root = Path(root)
        self.allow_unverified = allow_unverified
        self.entries: list[dict] = []

    def check(self, relpath: str) -> Path:
        path = self.root / relpath
        entry = describe_source(path, self.manifest_id)
        entry["file"] = relpath
        expected = self.manifest["files"].get(relpath)
        entry["verified"] = bool(expected) and (expected["sha256"], expected["size"]) == (entry["sha256"], entry["size"])
        if not entry["verified"] and not self.allow_unverified:
            why = "is not listed in the manifest" if not expected else \
                f"has sha256 {entry['sha256'][:12]}... ({entry['size']} bytes), the manifest says " \
                f"{expected['sha256'][:12]}... ({expected['size']} bytes)"
            raise UserError(f"{path}: {why} (data_manifests/{self.manifest_id}.json); "
                            "pass --allow-unverified-sources to build anyway")
        self.entries.append(entry)
        return path
