"""Stream the elements of a bare JSON list file (VQA-CP's questions and annotations).

`json.load` of VQA-CP's annotations builds millions of small dicts at once
(gigabytes); reading one element at a time keeps memory to what the caller keeps.
The file is read once: its sha256 is computed from the same bytes.
"""

from __future__ import annotations

import codecs
import hashlib
import json
from pathlib import Path
from typing import Callable, Iterator

from cfpairs.errors import UserError

_CHUNK = 1 << 22
_DECODER = json.JSONDecoder()


class _Buffer:
    """A sliding text window over a binary file: `buf[pos:]` is what is not consumed yet."""

    def __init__(self, fh, on_bytes: Callable[[int], None] | None):
        self.fh, self.buf, self.pos, self.eof = fh, "", 0, False
        self.sha = hashlib.sha256()
        self.text = codecs.getincrementaldecoder("utf-8")()
        self.on_bytes = on_bytes

    def fill(self) -> bool:
        raw = b"" if self.eof else self.fh.read(_CHUNK)
        self.eof = not raw
        self.sha.update(raw)
        if self.on_bytes and raw:
            self.on_bytes(len(raw))
        self.buf, self.pos = self.buf[self.pos:] + self.text.decode(raw, final=self.eof), 0
        return bool(raw)

    def peek(self) -> str:
        """The next non-space character ('' at the end of the file)."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf) or not self.fill():
                return self.buf[self.pos:self.pos + 1]

    def decode(self):
        """The next JSON value; reads more when the window ends inside it."""
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError:
                if self.fill():
                    continue
                raise
            if end < len(self.buf) or not self.fill():  # a value ending at the window's edge may go on
                self.pos = end
                return value

    def finish(self) -> str:
        while self.fill():
            pass
        return self.sha.hexdigest()


def iter_json_list(path, sha256: list | None = None, on_bytes=None) -> Iterator:
    """Yield each element of the JSON list in `path`, reading the file once, in chunks.

    When the list is exhausted, the file's sha256 hex digest is appended to `sha256`.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        reader = _Buffer(fh, on_bytes)
        try:
            yield from _elements(path, reader)
        except UnicodeDecodeError as exc:
            raise UserError(f"{path}: not UTF-8 text ({exc.reason})") from None
        if reader.peek():
            raise UserError(f"{path}: unexpected text after the closing ']'")
        if sha256 is not None:
            sha256.append(reader.finish())


def _elements(path: Path, reader: _Buffer) -> Iterator:
    if reader.peek() != "[":
        raise UserError(f"{path}: expected a JSON list, the file starts with {reader.buf[:20]!r}")
    reader.pos += 1
    if reader.peek() == "]":
        reader.pos += 1
        return
    index = 0
    while True:
        reader.peek()  # raw_decode does not skip leading white space
        try:
            value = reader.decode()
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: element {index} is not valid JSON ({exc.msg})") from None
        yield value
        index += 1
        char = reader.peek()
        reader.pos += 1
        if char == "]":
            return
        if char != ",":
            found = repr(char) if char else "the end of the file"
            raise UserError(f"{path}: after element {index - 1}: expected ',' or ']', found {found}")
