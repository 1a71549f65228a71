"""What the output modules share: the kinds of output, our signatures (what `--force` looks for on
a page), and the atomic file primitives (a temporary name beside the final one, then a rename)."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from cfpairs._version import __version__

MARKER = ".cfpairs"
FOLDER_KINDS: set = set()  # folders of marked files: each program registers its own (`register_folder_kind`)
PAGE_KINDS = ("json", "markdown", "html")
HDF5_FORMATS = {"cfpairs": "store", "cfpairs-features": "features"}  # root attribute `format` -> kind


def register_folder_kind(*names: str) -> None:
    """A program's kinds of output folder (the trainer's runs and tables, the builder's exports): each
    holds the `.cfpairs` marker listing what was written there."""
    FOLDER_KINDS.update(names)


def is_kind(kind: str) -> bool:
    return kind in HDF5_FORMATS.values() or kind in PAGE_KINDS or kind in FOLDER_KINDS
WRITE_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
NAME_MAX = 255
PART_EXTRA = len(".") + len(".4194304.") + len("12345678") + len(".part")  # what a part name adds


def generator() -> str:
    return f"cfpairs {__version__}"


def signed_json(value: dict) -> dict:
    """A JSON page's content with our signature as its first key (what `--force` looks for)."""
    return {"generator": generator(), **value}


def markdown_signature() -> str:
    return f"<!-- generator: {generator()} -->\n"


def html_signature() -> str:
    return f'<meta name="generator" content="{generator()}">'


PAGE_SIGNS = ('"generator": "cfpairs', "<!-- generator: cfpairs", '<meta name="generator" content="cfpairs')


# ---------------------------------------------------------------- atomic files


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def public_mode(path: Path, directory: bool = False) -> None:
    """The permissions a plain open()/mkdir() would have given (mkstemp/mkdtemp make them private)."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def part_prefix(final: Path) -> str:
    return f".{Path(final).name}.{os.getpid()}."


def write_text_atomic(path: Path, text: str) -> None:
    """`text` into `path` by a temporary file and a rename (a reader never sees half of it)."""
    write_file_atomic(path, lambda fh: fh.write(text.encode()))


def write_file_atomic(path: Path, write) -> None:
    """`write(binary file)` fills `path` by a temporary file and a rename (a reader never sees half of it)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=part_prefix(path), suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        public_mode(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

