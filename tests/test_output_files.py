"""The file side's failure modes: byte-safe folder names, the umask, a full disk, NUL in a
chunk, devices and pipes, and the writing side's independence from the parser."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from dreamline.errors import DreamlineError
from dreamline.outputs import (
    LOG_MD, LOG_TXT, OutputError, append_logs, output_entries, safe_dir_name, save_image,
)
from dreamline.pngmeta.chunks import MetadataError, metadata_chunks, read_text_chunks
from dreamline.repl.fetch import read_command

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# ---- folder names -------------------------------------------------------------------------------

def test_safe_dir_name_keeps_the_words_of_the_prompt() -> None:
    assert safe_dir_name("a red fox, at dawn!") == "a_red_fox_at_dawn"
    assert safe_dir_name("!!!") == "no_prompt"
    assert len(safe_dir_name("word " * 100)) <= 80


@pytest.mark.parametrize("char", ["𠀀", "你", "é", "a"])
def test_safe_dir_name_fits_255_bytes_on_a_character_boundary(tmp_path: Path, char: str) -> None:
    name = safe_dir_name(char * 300)
    encoded = name.encode("utf-8")
    assert len(encoded) <= 255
    assert encoded.decode("utf-8") == name and set(name) == {char}
    (tmp_path / name).mkdir()  # the file system takes it


def test_safe_dir_name_cut_never_leaves_a_partial_character() -> None:
    name = safe_dir_name("a" * 2 + "𠀀" * 100, max_chars=1000, max_bytes=9)
    assert name == "aa" + "𠀀"  # 2 + 4 bytes; a second one would need 10


# ---- permissions --------------------------------------------------------------------------------

@pytest.fixture()
def umask() -> Iterator[None]:
    old = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_images_and_logs_respect_the_umask(tmp_path: Path, umask: None) -> None:
    path = save_image(tmp_path, 1, 42, Image.new("RGB", (8, 8)), "cmd")
    append_logs(tmp_path, output_entries(1, [(path, "cmd")]))
    assert mode(path) == 0o664
    assert mode(tmp_path / LOG_TXT) == 0o664 and mode(tmp_path / LOG_MD) == 0o664
    os.umask(0o077)
    private = save_image(tmp_path, 2, 42, Image.new("RGB", (8, 8)), "cmd")
    assert mode(private) == 0o600


# ---- a full disk --------------------------------------------------------------------------------

def test_no_room_for_the_temporary_file_names_the_image(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*args: object, **kwargs: object) -> tuple[int, str]:
        raise ENOSPC

    monkeypatch.setattr(tempfile, "mkstemp", full)
    with pytest.raises(OutputError, match=r"000001\.42\.png.*No space left on device"):
        save_image(tmp_path, 1, 42, Image.new("RGB", (8, 8)), "cmd")


def test_a_failing_link_is_not_retried_as_if_links_were_unsupported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*args: object, **kwargs: object) -> None:
        raise ENOSPC

    monkeypatch.setattr(os, "link", full)
    with pytest.raises(OutputError, match=r"000001\.42\.png.*No space left on device"):
        save_image(tmp_path, 1, 42, Image.new("RGB", (8, 8)), "cmd")
    assert list(tmp_path.iterdir()) == []


def test_log_append_is_all_or_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    append_logs(tmp_path, output_entries(1, [(tmp_path / "000001.1.png", "first")]))
    before = {name: (tmp_path / name).read_bytes() for name in (LOG_TXT, LOG_MD)}
    real_write = os.write

    def full_for_markdown(descriptor: int, data: bytes) -> int:
        if bytes(data).startswith(b"## "):
            real_write(descriptor, bytes(data)[:5])  # a short write, then the disk is full
            raise ENOSPC
        return real_write(descriptor, data)

    monkeypatch.setattr(os, "write", full_for_markdown)
    with pytest.raises(OutputError) as error:
        append_logs(tmp_path, output_entries(2, [(tmp_path / "000002.1.png", "second")]))
    message = str(error.value)
    assert LOG_MD in message and "No space left on device" in message and "\n" not in message
    assert {name: (tmp_path / name).read_bytes() for name in (LOG_TXT, LOG_MD)} == before


def test_log_append_survives_short_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data)[:7]))
    append_logs(tmp_path, output_entries(1, [(tmp_path / "000001.1.png", "a long command")]))
    assert (tmp_path / LOG_TXT).read_text() == f"[1] {tmp_path}/000001.1.png: a long command\n"


# ---- NUL, devices and pipes ---------------------------------------------------------------------

def test_a_nul_is_never_stored_in_a_chunk(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match="'Dream'.*NUL") as error:
        save_image(tmp_path, 1, 42, Image.new("RGB", (8, 8)), '"a\x00b" -S 42', None,
                   "a\x00b\nSteps: 1")
    assert isinstance(error.value, DreamlineError) and "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []
    assert "\x00" not in metadata_chunks("c", {"image": {"prompt": "a\x00b"}})["sd-metadata"]


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_reading_back_a_device_says_not_a_regular_file() -> None:
    for reader in (read_text_chunks, read_command):
        with pytest.raises(MetadataError,
                           match="'/dev/null': is a character device, not a regular file"):
            reader("/dev/null")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_reading_back_a_fifo_never_opens_it(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(MetadataError, match="is a FIFO \\(named pipe\\), not a regular file"):
        read_command(fifo)


# ---- the writing side stays away from the parser ------------------------------------------------

def test_the_writing_side_does_not_import_the_parser() -> None:
    code = ("import sys, dreamline.outputs, dreamline.pngmeta.chunks, dreamline.pngmeta.invokeai,"
            " dreamline.pngmeta.a1111, dreamline.images; "
            "print(sorted(m for m in sys.modules if m in ('dreamline.parse', 'torch', "
            "'dreamline.repl')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_without_hard_links_the_image_is_still_published_with_the_umask(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask: None) -> None:
    def unsupported(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(os, "link", unsupported)
    path = save_image(tmp_path, 1, 42, Image.new("RGB", (8, 8), "red"), "cmd")
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == [path.name]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".partial-")]
    assert mode(path) == 0o664 and read_text_chunks(path)["Dream"] == "cmd"
    with pytest.raises(OutputError, match="already exists"):
        save_image(tmp_path, 1, 42, Image.new("RGB", (8, 8), "blue"), "cmd")


def test_read_request_parses_the_stored_command(tmp_path: Path) -> None:
    from dreamline.repl.fetch import read_prompt, read_request

    path = save_image(tmp_path, 1, 42, Image.new("RGB", (8, 8)), '"a red fox" -s 12 -S 42')
    request = read_request(path)
    assert (request.prompt, request.steps, request.seed) == ("a red fox", 12, 42)
    assert read_prompt(path) == "a red fox"
