"""Every output the programs write goes through this module: the checks made before any work,
ownership (what `--force` may replace), locks, staging and write failures.

Kinds of output and when one is ours (the only thing `--force` replaces):
- `store`: an HDF5 file whose root attribute `format` is "cfpairs";
- a folder (`run`, `table`, `sweep`, `curve`, `export`): it holds the marker file `.cfpairs`, which
  lists the files the program wrote there; a file that is neither listed nor inside a marked
  subfolder is foreign, and a folder holding one is not replaced;
- a page (`json`, `markdown`, `html`): a text file that carries our generator signature.

Never written, with or without `--force`: a path that is, contains or lies inside an input of the
same command; the working folder, one of its parents, the home folder or `/`; a symbolic link, a
device, a FIFO or a socket. Outputs appear whole or not at all: written under `.NAME.<pid>.XXXX.part`
beside the final name and renamed when complete (a folder that is resumed, a sweep, is written in
place, each of its runs staged). A lock file `.NAME.lock` beside the output is held (flock) while a
process writes it, so a second process is refused, and a killed one frees it. A full disk or a
file-size limit is an `OutputWriteError` (exit 1) naming the output; the part is removed.
"""

from __future__ import annotations

import contextvars
import errno
import fcntl
import json
import os
import resource
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

from cfpairs.errors import OutputWriteError, UserError

MARKER = ".cfpairs"
FOLDER_KINDS = ("run", "table", "sweep", "curve", "export")
PAGE_KINDS = ("json", "markdown", "html")
KINDS = ("store", *FOLDER_KINDS, *PAGE_KINDS)
WRITE_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
NAME_MAX = 255
PART_EXTRA = len(".") + len(".4194304.") + len("12345678") + len(".part")  # what a part name adds
_inputs: contextvars.ContextVar[tuple] = contextvars.ContextVar("cfpairs_inputs", default=())


# ---------------------------------------------------------------- signatures


def generator() -> str:
    from cfpairs import __version__  # noqa: PLC0415  (the package imports this module)
    return f"cfpairs {__version__}"


def signed_json(value: dict) -> dict:
    """A JSON page's content with our signature as its first key (what `--force` looks for)."""
    return {"generator": generator(), **value}


def markdown_signature() -> str:
    return f"<!-- generator: {generator()} -->\n"


def html_signature() -> str:
    return f'<meta name="generator" content="{generator()}">'


_PAGE_SIGNS = ('"generator": "cfpairs', "<!-- generator: cfpairs", '<meta name="generator" content="cfpairs')


# ---------------------------------------------------------------- inputs


@contextmanager
def command_inputs(paths):
    """Declare the inputs of the running command: no output may be, contain or lie inside one."""
    token = _inputs.set(tuple(Path(p) for p in paths if p is not None))
    try:
        yield
    finally:
        _inputs.reset(token)


def _resolved(path: Path) -> Path:
    try:
        return Path(os.path.realpath(path))
    except (OSError, ValueError):
        return Path(os.path.abspath(path))


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return _resolved(a) == _resolved(b)


def _inside(inner: Path, outer: Path) -> bool:
    inner, outer = _resolved(inner), _resolved(outer)
    return inner != outer and outer in inner.parents


def _check_inputs(path: Path, option: str, inputs) -> None:
    for given in [*_inputs.get(), *(Path(p) for p in inputs if p is not None)]:
        if not given.exists():
            continue
        if _same(path, given) or _resolved(path) == _resolved(given):
            raise UserError(f"{option} {path}: is an input of this command ({given}); choose another {option}")
        if _inside(given, path):
            raise UserError(f"{option} {path}: contains an input of this command ({given}); choose another "
                            f"{option}")
        if given.is_dir() and _inside(path, given):
            raise UserError(f"{option} {path}: lies inside the input folder {given}; choose another {option}")


# ---------------------------------------------------------------- the checks


def _short(path: Path) -> str:
    text = str(path)
    return text if len(text) <= 120 else f"{text[:60]}...{text[-40:]} ({len(text)} characters)"


def _check_name(path: Path, option: str) -> None:
    name = os.fsencode(path.name)
    limit = NAME_MAX - PART_EXTRA - len(".old")
    if len(name) > limit:
        raise UserError(f"file name too long ({len(name)} bytes; at most {limit}, as the temporary name beside "
                        f"it adds {PART_EXTRA}): {option} {_short(path)}")
    if len(os.fsencode(os.path.abspath(path))) > 4000:
        raise UserError(f"path too long ({len(str(path))} characters): {option} {_short(path)}")


def _check_not_special(path: Path, option: str) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UserError(f"{option} {_short(path)}: cannot be examined ({exc.strerror})") from None
    if stat.S_ISLNK(info.st_mode):
        raise UserError(f"{option} {path}: is a symbolic link (to {os.readlink(path)}); give the real path")
    what = special_kind(info.st_mode)
    if what:
        raise UserError(f"{option} {path}: is a {what}, not a regular file or folder; never replaced")


def special_kind(mode: int) -> str | None:
    for test, name in ((stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return None


def _check_protected(path: Path, option: str) -> None:
    resolved = _resolved(path)
    cwd = _resolved(Path.cwd())
    home = _resolved(Path.home())
    if resolved == cwd or resolved in cwd.parents:
        raise UserError(f"{option} {path}: is the working folder{'' if resolved == cwd else ' or one of its parents'};"
                        f" give a new folder, e.g. {option} runs/NAME")
    if resolved in (home, Path(resolved.anchor)):
        raise UserError(f"{option} {path}: is {'the home folder' if resolved == home else 'the root folder'}; "
                        f"give a new folder, e.g. {option} runs/NAME")


def _writable(folder: Path, path: Path, option: str) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: folder {folder} is not writable")


def check_output(path, kind: str, force: bool = False, inputs=(), option: str = "--out",
                 resumable: bool = False) -> Path:
    """Every check that can be made before any work; raises UserError naming `option` and the problem.
    `resumable`: an existing folder of this kind is continued rather than replaced."""
    assert kind in KINDS, kind
    path = Path(path)
    _check_name(path, option)
    _check_not_special(path, option)
    _check_protected(path, option)
    _check_inputs(path, option, inputs)
    folder = kind in FOLDER_KINDS
    if not folder:
        if not path.parent.is_dir():
            raise UserError(f"{option} {path}: output folder {path.parent} does not exist")
        _writable(path.parent, path, option)
    else:
        existing = next(p for p in [path, *path.parents] if p.exists() or p == Path(p.anchor))
        if existing != path and not existing.is_dir():
            raise UserError(f"{option} {path}: {existing} is a file, not a folder")
        _writable(existing if existing != path else path.parent, path, option)
    if not path.exists():
        return path
    if folder and not path.is_dir():
        raise UserError(f"{option} {path}: is a file, not a folder")
    if not folder and path.is_dir():
        raise UserError(f"{option} {path}: is a folder, not a file")
    if folder and not any(path.iterdir()):
        return path  # an empty folder is free
    if resumable and owner(path) == kind:
        return path  # continued in place (the caller checks that it is the same work)
    if not force:
        raise UserError(f"{option} {path}: already exists{' and is not empty' if folder else ''} "
                        "(use --force to replace it)")
    problem = not_ours(path, kind)
    if problem:
        raise UserError(f"{option} {path}: {problem}; --force replaces only what cfpairs wrote")
    return path


# ---------------------------------------------------------------- ownership


def owner(path) -> str | None:
    """The kind of cfpairs output at `path`, or None when it is not one of ours."""
    path = Path(path)
    if path.is_dir():
        marker = read_marker(path)
        return marker.get("kind") if marker else None
    if not path.is_file():
        return None
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "store" if _is_store(path) else None
    text = head.decode("utf-8", "replace")
    for sign, kind in zip(_PAGE_SIGNS, PAGE_KINDS):
        if sign in text:
            return kind
    return None


def _is_store(path: Path) -> bool:
    import h5py  # noqa: PLC0415

    try:
        with h5py.File(path, "r") as h5:
            value = h5.attrs.get("format")
    except (OSError, ValueError):
        return False
    return (value.decode() if isinstance(value, bytes) else value) == "cfpairs"


def read_marker(folder: Path) -> dict | None:
    try:
        value = json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) and value.get("written_by") == "cfpairs" else None


def write_marker(folder: Path, kind: str, files=None) -> None:
    """The marker: the folder's kind and the files written there (relative paths, sorted)."""
    listed = sorted(files) if files is not None else sorted(_files_written(folder))
    write_text_atomic(Path(folder) / MARKER, json.dumps({"written_by": "cfpairs", "version": generator(),
                                                         "kind": kind, "files": listed}, indent=1))


def _files_written(folder: Path) -> list:
    """Files under `folder` that no marked subfolder accounts for (those list their own)."""
    out = []
    for root, dirs, files in os.walk(folder):
        root = Path(root)
        dirs[:] = [d for d in dirs if not (root / d / MARKER).is_file()]
        out += [str((root / f).relative_to(folder)) for f in files if f != MARKER]
    return out


def add_to_marker(folder: Path, *names: str) -> None:
    marker = read_marker(folder) or {}
    write_marker(folder, marker.get("kind", "run"), set(marker.get("files", [])) | set(names))


def _is_our_temporary(name: str) -> bool:
    return name.startswith(".") and (name.endswith(".part") or name.endswith(".lock"))


def not_ours(path: Path, kind: str) -> str | None:
    """Why `path` may not be replaced by an output of `kind` (None: it is ours)."""
    found = owner(path)
    if kind in FOLDER_KINDS:
        if not path.is_dir():
            return "is not a folder"
        if found is None:
            sample = ", ".join(sorted(p.name for p in path.iterdir())[:3])
            return f"is not a folder written by cfpairs (no {MARKER} marker; it holds {sample})"
        foreign = foreign_files(path)
        if foreign:
            more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
            return f"holds files cfpairs did not write ({', '.join(foreign[:3])}{more}); move them out first"
        return None
    if found is None:
        what = "store" if kind == "store" else f"{kind} page"
        return f"is not a {what} written by cfpairs"
    return None


def foreign_files(folder: Path) -> list:
    """Files under a marked folder that neither its marker nor a marked subfolder lists."""
    marker = read_marker(folder)
    if marker is None:
        return sorted(p.name for p in folder.iterdir())
    listed = set(marker.get("files", []))
    out = []
    for root, dirs, files in os.walk(folder):
        root = Path(root)
        for d in list(dirs):
            if (root / d / MARKER).is_file() or _is_our_temporary(d):
                dirs.remove(d)
                if not _is_our_temporary(d):
                    out += [str((root / d).relative_to(folder) / f) for f in foreign_files(root / d)]
        for f in files:
            relative = str((root / f).relative_to(folder))
            if f != MARKER and relative not in listed and not _is_our_temporary(f):
                out.append(relative)
    return sorted(out)


# ---------------------------------------------------------------- locks


class OutputLock:
    """An exclusive lock on `.NAME.lock` beside `final`, held until released or the process ends."""

    def __init__(self, final: Path, option: str = "--out"):
        self.final, self.option = Path(final), option
        self.path = self.final.parent / f".{self.final.name}.lock"
        self.fd = None

    def acquire(self) -> "OutputLock":
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise UserError(f"{self.option} {self.final}: another process (pid {holder}) is writing it; "
                                f"wait for it to finish or choose another {self.option}") from None
            try:  # the file we locked must still be the one at the path (a releaser unlinks it)
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


# ---------------------------------------------------------------- staging


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def public_mode(path: Path, directory: bool = False) -> None:
    """The permissions a plain open()/mkdir() would have given (mkstemp/mkdtemp make them private)."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def part_prefix(final: Path) -> str:
    return f".{Path(final).name}.{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_parts(final: Path) -> list[Path]:
    """Remove `.NAME.<pid>.*.part` files or folders beside `final` whose process is gone."""
    removed = []
    final = Path(final)
    for part in final.parent.glob(f".{final.name}.*.part"):
        pid = part.name[len(final.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(part, ignore_errors=True) if part.is_dir() else part.unlink(missing_ok=True)
            removed.append(part)
    return removed


def write_failure(exc: BaseException) -> str | None:
    """The reason, when `exc` is a failed write (full disk, file-size limit, quota); else None."""
    if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
        return os.strerror(exc.errno)
    text = str(exc)
    if isinstance(exc, RuntimeError) and "write" in text and "fail" in text:  # torch.save's stream writer
        return "a write failed (" + ("the disk is full" if _disk_nearly_full() else
                                     "a file-size limit or the disk") + ")"
    return None


BLOCK_BYTES = 4 << 20    # a dataset is written in blocks of at most this many bytes (before compression)
ROOM_MARGIN = 4 << 20    # more room wanted than a block takes: HDF5 caches up to 1 MB of chunks per dataset


class Room:
    """Whether the next write fits. HDF5 and Arrow must never meet a failed write (a full disk,
    `ulimit -f`): h5py drops the error when it closes a dataset and HDF5 later crashes the process;
    Arrow's parquet writer aborts it. So each block (at most BLOCK_BYTES) or file is checked against
    the file-size limit and the disk's free space before it is written. `fd`: the file being grown."""

    def __init__(self, path: Path, option: str = "--out", fd: int | None = None):
        self.path, self.option, self.fd = Path(path), option, fd

    def ensure(self, nbytes: int) -> None:
        need = int(nbytes) + ROOM_MARGIN
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        size = os.fstat(self.fd).st_size if self.fd is not None else 0
        if limit != resource.RLIM_INFINITY and size + need > limit:
            raise OutputWriteError(f"{self.option} {self.path}: cannot be written: File too large (the file-size "
                                   f"limit, ulimit -f, is {limit:,} bytes; the store needs more); nothing was left "
                                   "behind")
        info = os.statvfs(self.path.parent)
        free = info.f_bavail * info.f_frsize
        if need > free:
            raise OutputWriteError(f"{self.option} {self.path}: cannot be written: No space left on device "
                                   f"({free / 1e6:,.1f} MB free on the disk holding {self.path.parent}); nothing "
                                   "was left behind")


def _disk_nearly_full(folder: str = ".") -> bool:
    try:
        info = os.statvfs(folder)
    except OSError:
        return False
    return info.f_bavail * info.f_frsize < (1 << 20)


class Staged:
    """One output being written: `begin()` checks, locks and gives the temporary path; `publish()`
    renames it to the final name; `discard()` removes it. Use `staged(...)` as a context manager."""

    def __init__(self, final, kind: str, force: bool = False, inputs=(), option: str = "--out"):
        self.final, self.kind, self.force, self.inputs, self.option = Path(final), kind, force, inputs, option
        self.tmp: Path | None = None
        self.lock = OutputLock(self.final, option)
        self.folder = kind in FOLDER_KINDS

    def begin(self) -> Path:
        check_output(self.final, self.kind, self.force, self.inputs, self.option)
        if self.folder:
            self.final.parent.mkdir(parents=True, exist_ok=True)
        self.lock.acquire()
        try:
            check_output(self.final, self.kind, self.force, self.inputs, self.option)  # now under the lock
            remove_stale_parts(self.final)
            prefix = part_prefix(self.final)
            if self.folder:
                self.tmp = Path(tempfile.mkdtemp(dir=self.final.parent, prefix=prefix, suffix=".part"))
                public_mode(self.tmp, directory=True)
                write_marker(self.tmp, self.kind, [])
            else:
                fd, tmp = tempfile.mkstemp(dir=self.final.parent, prefix=prefix, suffix=".part")
                os.close(fd)
                self.tmp = Path(tmp)
                public_mode(self.tmp)
        except BaseException as exc:
            self.discard()
            self._raise_if_write_failure(exc)
            raise
        return self.tmp

    def publish(self) -> Path:
        try:
            if self.folder:
                write_marker(self.tmp, self.kind)
                self._publish_folder()
            else:
                self._publish_file()
        except BaseException as exc:
            self.discard()
            self._raise_if_write_failure(exc)
            raise
        self.lock.release()
        return self.final

    def _replace_check(self) -> None:
        """Right before the rename: the old output may have changed while we worked."""
        if not self.final.exists() or (self.folder and self.final.is_dir() and not any(self.final.iterdir())):
            return
        if not self.force:
            raise UserError(f"{self.option} {self.final}: appeared while this command ran; nothing was replaced "
                            "(use --force to replace it)")
        problem = not_ours(self.final, self.kind)
        if problem:
            raise UserError(f"{self.option} {self.final}: {problem}; --force replaces only what cfpairs wrote")

    def _publish_file(self) -> None:
        with open(self.tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        self._replace_check()
        if self.force:
            os.replace(self.tmp, self.final)
        else:
            try:  # link() refuses an existing target: no race with another writer
                os.link(self.tmp, self.final)
            except FileExistsError:
                raise UserError(f"{self.option} {self.final}: appeared while this command ran (use --force to "
                                "replace it)") from None
            self.tmp.unlink()
        self.tmp = None

    def _publish_folder(self) -> None:
        self._replace_check()
        old = None
        if self.final.exists():
            if any(self.final.iterdir()):
                old = self.final.with_name(f"{part_prefix(self.final)}old.part")
                os.rename(self.final, old)
            else:
                self.final.rmdir()
        os.rename(self.tmp, self.final)
        self.tmp = None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True) if self.tmp.is_dir() else self.tmp.unlink(missing_ok=True)
            self.tmp = None
        self.lock.release()

    def _raise_if_write_failure(self, exc: BaseException) -> None:
        reason = write_failure(exc)
        if reason:
            raise OutputWriteError(f"{self.option} {self.final}: cannot be written: {reason}; nothing was "
                                   "left behind") from None


@contextmanager
def staged(final, kind: str, force: bool = False, inputs=(), option: str = "--out"):
    """A temporary path beside `final` (a file, or a folder for folder kinds) to fill; renamed to
    `final` when the block succeeds, removed when it fails or is interrupted."""
    output = Staged(final, kind, force, inputs, option)
    tmp = output.begin()
    try:
        yield tmp
    except BaseException as exc:
        output.discard()
        output._raise_if_write_failure(exc)
        raise
    output.publish()


def write_text_atomic(path: Path, text: str) -> None:
    """`text` into `path` by a temporary file and a rename (a reader never sees half of it)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=part_prefix(path), suffix=".part")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        public_mode(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_page(final, kind: str, text: str, force: bool = False, inputs=(), option: str = "--out") -> Path:
    """A whole page (json, markdown, html) written as one staged output."""
    with staged(final, kind, force, inputs, option) as tmp:
        Path(tmp).write_text(text)
    return Path(final)


# ---------------------------------------------------------------- folders continued in place


def _holds_results(folder: Path) -> bool:
    """Whether a campaign folder holds anything beyond its marker, empty folders and parts."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not _is_our_temporary(d)]
        if any(f != MARKER and not _is_our_temporary(f) for f in files):
            return True
    return False


@contextmanager
def folder_in_place(final, kind: str, force: bool = False, inputs=(), option: str = "--out"):
    """A folder written in place and resumable (a sweep, a table, a curve): created with its marker
    when new or empty, continued when it is already one of this kind (the caller checks that it is
    the same work), erased first only with `force` and only when ours. Locked while the block runs;
    write failures become OutputWriteError. Yields (folder, resumed)."""
    final = Path(final)
    check_output(final, kind, force, inputs, option, resumable=not force)
    final.parent.mkdir(parents=True, exist_ok=True)
    with OutputLock(final, option):
        check_output(final, kind, force, inputs, option, resumable=not force)
        resumed = final.is_dir() and owner(final) == kind and not force
        created = not final.exists()
        try:
            if final.exists() and any(final.iterdir()) and not resumed:
                old = final.with_name(f"{part_prefix(final)}old.part")
                os.rename(final, old)
                shutil.rmtree(old, ignore_errors=True)
            final.mkdir(exist_ok=True)
            if not resumed:
                write_marker(final, kind, [])
            yield final, resumed
        except BaseException as exc:
            if created and not _holds_results(final):  # nothing finished: leave nothing behind
                shutil.rmtree(final, ignore_errors=True)
            reason = write_failure(exc)
            if reason:
                raise OutputWriteError(f"{option} {final}: cannot be written: {reason}; the finished runs in it "
                                       "are kept (run the same command again to continue)") from None
            raise
