"""Each source's licence and citation: builders record them in the store's `sources` (from the
source's manifest in `data_manifests/`, or `--license`/`--citation` for a user's own files), so an
export can state them (`cfbuild.card`). Nobody stated one: "unknown", said plainly."""

from __future__ import annotations

from cfbuild.manifest import load_manifest
from cfpairs.errors import UserError
from cfpairs import __version__

UNKNOWN = "unknown"
MAX_TERMS = 4000  # characters of a licence or citation read from a card
PROJECT_CITATION = (f"cfpairs {__version__}: counterfactual pair stores and gradient supervision (software), after "
                    "Teney, Abbasnejad & van den Hengel, Learning What Makes a Difference from Counterfactual "
                    "Examples and Gradient Supervision, ECCV 2020.")


def _manifest(manifest_id):
    if not manifest_id:
        return {}
    try:
        return load_manifest(manifest_id)
    except (FileNotFoundError, ValueError):
        return {}


def with_terms(sources: list, license: str | None = None, citation: str | None = None) -> list:
    """The `sources` entries with `license` and `citation` filled: an entry's own, else its manifest's,
    else the build's `--license`/`--citation` (for files no manifest describes), else "unknown"."""
    out = []
    for entry in sources:
        manifest = _manifest(entry.get("manifest_id"))
        out.append({**entry, "license": entry.get("license") or manifest.get("license") or license or UNKNOWN,
                    "citation": entry.get("citation") or manifest.get("citation") or citation or UNKNOWN})
    return out


def source_terms(sources: list) -> list:
    """[{file, sha256, license, citation, homepage, manifest}] of a store's sources (a store built
    before sources carried their terms: its manifests', else unknown)."""
    out = []
    for entry in with_terms(sources or []):
        manifest = _manifest(entry.get("manifest_id"))
        out.append({"file": entry.get("file", "?"), "sha256": entry.get("sha256"), "license": entry["license"],
                    "citation": entry["citation"], "homepage": manifest.get("homepage"),
                    "manifest": entry.get("manifest_id")})
    return out or [{"file": "(none recorded)", "sha256": None, "license": UNKNOWN, "citation": UNKNOWN,
                    "homepage": None, "manifest": None}]


def read_card(folder) -> dict:
    """The YAML header of an exported folder's README.md (`cfbuild export` writes it): {} when there
    is none or it is not YAML; a header is data, read with yaml.safe_load."""
    from pathlib import Path  # noqa: PLC0415
    import yaml  # noqa: PLC0415  (datasets' dependency)

    path = Path(folder) / "README.md"
    if not path.is_file():
        return {}
    text = path.read_text(errors="replace")
    if not text.startswith("---\n") or "\n---" not in text[4:]:
        return {}
    try:
        header = yaml.safe_load(text[4:text.index("\n---", 4)])
    except yaml.YAMLError:
        return {}
    return header if isinstance(header, dict) else {}


def card_terms(folder) -> tuple:
    """(licence, citation) an exported folder's card states: its licence (the words of `license_details`
    where the id is "other"), and the citations of its body's Citation section (none: None)."""
    from pathlib import Path  # noqa: PLC0415

    header = read_card(folder)
    license = header.get("license_details") if header.get("license") == "other" else header.get("license")
    license = license if isinstance(license, str) else None  # a card is data: text or nothing
    citation = None
    path = Path(folder) / "README.md"
    if path.is_file() and "\n## Citation\n" in path.read_text(errors="replace"):
        section = path.read_text(errors="replace").split("\n## Citation\n", 1)[1]
        cited = [line[2:].strip() for line in section.splitlines() if line.startswith("- ")
                 and not line[2:].startswith("cfpairs ")]
        citation = " ".join(cited) or None
    for what, value in (("licence", license), ("citation", citation)):
        if value is not None and len(value) > MAX_TERMS:
            raise UserError(f"{path}: its card's {what} runs to {len(value):,} characters (at most {MAX_TERMS:,}); "
                            "give --license/--citation instead")
    return (license if license and license != UNKNOWN else None), citation
