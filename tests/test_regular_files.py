"""One check, one wording: every place that reads a file the user named (init image or mask,
an image read back for its metadata, an -I/-M path at the prompt) refuses the same things with
the same line: the path, what it is instead, what was expected."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from dreamline.errors import DreamlineError, ImageError
from dreamline.image_files import open_image
from dreamline.pngmeta.chunks import MetadataError, read_text_chunks
from dreamline.regular_files import IMAGE_FILE, check_regular_file
from dreamline.repl.inputs import find_image


def _opened(path: Path) -> None:
    open_image(path, "init image")


def _read_back(path: Path) -> None:
    read_text_chunks(path)


def _found(path: Path) -> None:
    find_image(str(path), path.parent / "elsewhere", "init image")


READERS: dict[str, tuple[Callable[[Path], None], type[DreamlineError], str]] = {
    "image_files.open_image": (_opened, ImageError, f"init image '{{}}': {{}}; expected "
                                                    f"{IMAGE_FILE}"),
    "pngmeta.chunks.read_text_chunks": (_read_back, MetadataError, "image '{}': {}; expected "
                                        "a PNG file (an image with generation metadata)"),
    "repl.inputs.find_image": (_found, DreamlineError, f"init image '{{}}': {{}}; expected "
                                                       f"{IMAGE_FILE}"),
}


def _directory(tmp_path: Path) -> tuple[Path, str]:
    (tmp_path / "pictures").mkdir()
    return tmp_path / "pictures", "is a directory"


def _fifo(tmp_path: Path) -> tuple[Path, str]:
    if not hasattr(os, "mkfifo"):
        pytest.skip("needs FIFOs")
    os.mkfifo(tmp_path / "pipe.png")  # opening it would block forever
    return tmp_path / "pipe.png", "is a FIFO (named pipe), not a regular file"


def _device(tmp_path: Path) -> tuple[Path, str]:
    if not os.path.exists("/dev/null"):
        pytest.skip("needs /dev/null")
    return Path("/dev/null"), "is a character device, not a regular file"


def _missing(tmp_path: Path) -> tuple[Path, str]:
    return tmp_path / "nothing.png", "no such file"


KINDS = {"directory": _directory, "fifo": _fifo, "device": _device, "missing": _missing}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reader", READERS)
def test_every_reader_refuses_a_non_regular_file_in_the_same_words(
        tmp_path: Path, reader: str, kind: str) -> None:
    read, error_type, wording = READERS[reader]
    path, what_it_is = KINDS[kind](tmp_path)
    with pytest.raises(error_type) as error:
        read(path)
    assert str(error.value) == wording.format(path, what_it_is)


@pytest.mark.parametrize("reader", READERS)
def test_an_unreadable_file_is_named_with_the_permission_problem(
        tmp_path: Path, reader: str, monkeypatch: pytest.MonkeyPatch) -> None:
    read, error_type, wording = READERS[reader]
    path = tmp_path / "secret.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n")
    real_access = os.access
    # root reads every file whatever its mode, so the refusal is simulated for this one file
    monkeypatch.setattr(os, "access", lambda name, mode, **kw: False if Path(name) == path
                        else real_access(name, mode, **kw))
    with pytest.raises(error_type) as error:
        read(path)
    assert str(error.value) == wording.format(path, "cannot be read: permission denied")


def test_a_missing_relative_path_says_where_it_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(DreamlineError) as error:
        find_image("nothing.png", tmp_path / "outputs", "mask")
    assert str(error.value) == (f"mask 'nothing.png': no such file (looked here and in "
                                f"{tmp_path / 'outputs'}); expected {IMAGE_FILE}")


def test_a_regular_file_passes_and_comes_back_expanded(tmp_path: Path) -> None:
    path = tmp_path / "fine.png"
    path.write_bytes(b"x")
    assert check_regular_file(path, "init image", IMAGE_FILE) == path
