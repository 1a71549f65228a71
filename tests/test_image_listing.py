"""`cfbuild features` lists only what it can read: a FIFO, a device or a link among the images, a
name that is not UTF-8, and a list line outside its list's folder are refused by name before any
image is read (no lock or part left behind)."""

from __future__ import annotations

import os

import pytest

from cfbuild.images.files import list_images
from cfpairs.errors import UserError
from tests.helpers import refused


def image(path, content=b"\xff\xd8 not decoded here"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_regular_images_are_listed(tmp_path):
    image(tmp_path / "a" / "x.jpg")
    image(tmp_path / "a" / "sub" / "y.png")
    assert [f.shown for f in list_images([tmp_path / "a"])] == ["x.jpg", "sub/y.png"]


def test_a_fifo_among_the_images_is_refused_not_read(tmp_path):
    image(tmp_path / "a" / "x.jpg")
    os.mkfifo(tmp_path / "a" / "y.jpg")
    with pytest.raises(UserError, match="y.jpg: a FIFO, not an image file"):
        list_images([tmp_path / "a"])
    refused("cfbuild", ["features", "--images", tmp_path / "a", "--workers", 0, "--out", tmp_path / "f.h5"],
            "a FIFO", out=tmp_path / "f.h5")
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".f.h5")]  # no lock, no part


def test_a_link_among_the_images_is_refused(tmp_path):
    image(tmp_path / "elsewhere.jpg")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.jpg").symlink_to(tmp_path / "elsewhere.jpg")
    with pytest.raises(UserError, match="x.jpg: a symbolic link"):
        list_images([tmp_path / "a"])


def test_a_file_name_that_is_not_utf8_is_refused(tmp_path):
    folder = tmp_path / "a"
    folder.mkdir()
    with open(os.path.join(os.fsencode(folder), b"\xff\xfe.jpg"), "wb") as fh:
        fh.write(b"x")
    with pytest.raises(UserError, match="not UTF-8"):
        list_images([folder])


@pytest.mark.parametrize("line", ["/etc/hostname.jpg", "../outside.jpg"])
def test_a_list_line_outside_the_lists_folder_is_refused(tmp_path, line):
    image(tmp_path / "outside.jpg")
    image(tmp_path / "l" / "x.jpg")
    (tmp_path / "l" / "list.txt").write_text(f"x.jpg\n{line}\n")
    with pytest.raises(UserError, match="line 2: .*outside the list's folder"):
        list_images(lists=[tmp_path / "l" / "list.txt"])
