"""The registries' catalog (`cftrain/catalog.json`): what `cftrain --help` is built from without torch."""

import json
import subprocess
import sys

from cftrain import catalog
from cftrain.registry import PARTS, all_options


def test_catalog_round_trips_every_declaration():
    built = catalog.from_registries()
    read = catalog.Catalog.from_json(json.loads(json.dumps(built.to_json())))
    assert read == built
    assert read.all_options() == all_options()
    assert list(read.modes) == list(PARTS["mode"])
    for kind, registry in PARTS.items():
        assert set(read.parts[kind]) == set(registry)


def test_committed_catalog_is_current_and_read():
    data = json.loads(catalog.CATALOG.read_text())
    assert data["sources"] == catalog.sources_digest(), "stale cftrain/catalog.json: run make docs"
    assert catalog.current() == catalog.from_registries()


def test_stale_catalog_falls_back_to_the_registries(tmp_path, monkeypatch):
    stale = json.loads(catalog.CATALOG.read_text())
    stale["sources"] = "0" * 64
    del stale["parts"]["model"]["mlp"]  # what an edit since `make docs` could leave out
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(stale))
    monkeypatch.setattr(catalog, "CATALOG", path)
    assert "mlp" in catalog.current().parts["model"]
    stale["sources"] = catalog.sources_digest()  # a current digest is trusted as it is
    path.write_text(json.dumps(stale))
    assert "mlp" not in catalog.current().parts["model"]


def test_sources_digest_follows_a_declaring_file(tmp_path, monkeypatch):
    for entry in catalog.SOURCES:
        source = catalog.PACKAGE / entry
        if source.is_dir():
            (tmp_path / entry).mkdir()
            for file in source.glob("*.py"):
                (tmp_path / entry / file.name).write_bytes(file.read_bytes())
        else:
            (tmp_path / entry).write_bytes(source.read_bytes())
    monkeypatch.setattr(catalog, "PACKAGE", tmp_path)
    before = catalog.sources_digest()
    assert before == json.loads(catalog.CATALOG.read_text())["sources"]
    (tmp_path / "methods" / "new_method.py").write_text("# a new method\n")
    assert catalog.sources_digest() != before


HEAVY = ("torch", "matplotlib", "h5py", "numpy", "sklearn")


def test_help_imports_neither_torch_nor_matplotlib():
    script = ("import sys\nfrom cli.cftrain import main\n"
              "for args in (['--help'], ['run', '--help'], ['table', '--help'], ['sweep', '--help'],"
              " ['curve', '--help']):\n"
              "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
              f"print('loaded', [m for m in {HEAVY!r} if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert "--mode [" in out and "Usage: cftrain run" in out
    assert out.strip().splitlines()[-1] == "loaded []"
