"""The reader alone: `import cfpairs` opens, verifies and iterates a store with torch, spaCy,
datasets, tqdm and click unavailable (what `pip install .` gives); `python -m cfpairs` checks it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import REPO

BLOCKED = ("torch", "spacy", "datasets", "tqdm", "click", "pyarrow", "pycocotools", "matplotlib", "PIL", "cfbuild",
           "cftrain")
BLOCKER = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError("blocked in this test: " + name)
sys.meta_path.insert(0, Block())
"""


def reader_only(code: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER + code, *map(str, args)], cwd=REPO, capture_output=True,
                          text=True)


@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["text_pair", "regions", "multilabel"])
def test_open_verify_and_iterate_without_the_programs_dependencies(stores, kind):
    result = reader_only("""
import sys, cfpairs
from cfpairs.check import verify_store
assert verify_store(sys.argv[1]) is None
with cfpairs.open_store(sys.argv[1]) as store:
    train = store["train"]
    pairs = list(train.iter_pairs())
    assert len(pairs) == len(train.pairs) > 0
    original, edited, kind = pairs[0]
    assert set(original) == set(train.examples) and not original["is_counterfactual"] and edited["is_counterfactual"]
    print(len(pairs), kind, store.digest[:8])
assert not any(m.split(".")[0] in {"torch", "spacy", "datasets", "tqdm", "click"} for m in sys.modules)
""", stores[kind])
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[0]) > 0


@pytest.mark.e2e
def test_python_dash_m_cfpairs_verifies_and_names_damage(stores, tmp_path):
    import shutil

    from tests.helpers import flip_first_chunk_byte
    ok = reader_only("import runpy; runpy.run_module('cfpairs', run_name='__main__')", "verify", stores["text"])
    assert ok.returncode == 0 and ok.stdout.strip() == "ok", ok.stderr
    shutil.copy(stores["text"], tmp_path / "d.h5")
    flip_first_chunk_byte(tmp_path / "d.h5", "train/examples/tokens")
    bad = subprocess.run([sys.executable, "-m", "cfpairs", "verify", str(tmp_path / "d.h5")], cwd=REPO,
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "dataset /train/examples/tokens cannot be read back" in bad.stderr
