"""Console scripts: each program checks that its extra is installed before importing it, so a
reader-only install (`pip install .`) gets one line naming the extra instead of a traceback."""

from __future__ import annotations

import importlib.util
import sys

NEEDS = {"cfbuild": ("build", ("click", "tqdm", "spacy", "datasets", "pyarrow", "pycocotools")),
         "cftrain": ("train", ("click", "tqdm", "torch", "matplotlib"))}


def _check(program: str) -> None:
    extra, modules = NEEDS[program]
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        print(f"{program}: error: needs {', '.join(missing)}, from the '{extra}' extra: "
              f"pip install 'cfpairs[{extra}]' (in a checkout: pip install -e '.[{extra}]')", file=sys.stderr)
        sys.exit(2)


def cfbuild() -> None:
    _check("cfbuild")
    from cli.cfbuild import main  # noqa: PLC0415
    main()


def cftrain() -> None:
    _check("cftrain")
    from cli.cftrain import main  # noqa: PLC0415
    main()
