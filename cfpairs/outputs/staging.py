"""Outputs written whole or not at all: locks, temporary parts renamed when complete, stale parts of
dead processes removed, write failures (a full disk, a file-size limit) caught before HDF5 or Arrow
meet them, and campaign folders continued in place."""

from __future__ import annotations

import fcntl
import os
import resource
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from cfpairs.errors import OutputWriteError, UserError
from cfpairs.outputs.basics import FOLDER_KINDS, MARKER, WRITE_ERRNOS, part_prefix, public_mode
from cfpairs.outputs.checks import check_output
from cfpairs.outputs.ownership import is_our_temporary, not_ours, owner, write_marker


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


def write_page(final, kind: str, text: str, force: bool = False, inputs=(), option: str = "--out") -> Path:
    """A whole page (json, markdown, html) written as one staged output."""
    with staged(final, kind, force, inputs, option) as tmp:
        Path(tmp).write_text(text)
    return Path(final)


# ---------------------------------------------------------------- folders continued in place


def _holds_results(folder: Path) -> bool:
    """Whether a campaign folder holds anything beyond its marker, empty folders and parts."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not is_our_temporary(d)]
        if any(f != MARKER and not is_our_temporary(f) for f in files):
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
