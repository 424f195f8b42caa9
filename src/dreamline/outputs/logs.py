"""What a command printed and logged: ``[N] path: command`` lines, invoke_log.txt and .md.

A command's lines reach both logs or neither: the append happens under the output directory's
lock, and when either write fails (a full disk) both files are cut back to their old length.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from dreamline.outputs.files import OutputDir, OutputError

LOG_TXT = "invoke_log.txt"
LOG_MD = "invoke_log.md"


def output_entries(number: int, paths_and_commands: Sequence[tuple[str | os.PathLike[str], str]]
                   ) -> list[tuple[str, Path, str]]:
    """Label each file of one command: ``N`` for a single file, ``N.1``, ``N.2``... for several.

    The REPL passes the command's file prefix as ``number`` so log numbers match file names
    across sessions (the reference used a per-session counter).
    """
    if len(paths_and_commands) == 1:
        path, command = paths_and_commands[0]
        return [(str(number), Path(path), command)]
    return [(f"{number}.{index}", Path(path), command)
            for index, (path, command) in enumerate(paths_and_commands, start=1)]


def format_output_lines(number: int,
                        paths_and_commands: Sequence[tuple[str | os.PathLike[str], str]]
                        ) -> list[str]:
    """The lines printed after a command: ``Outputs:`` then ``[N] path: command`` per file."""
    if not paths_and_commands:
        return []
    entries = output_entries(number, paths_and_commands)
    return ["Outputs:"] + [f"[{label}] {path}: {command}" for label, path, command in entries]


def _markdown_target(outdir: Path, path: Path) -> str:
    """The image's address as seen from invoke_log.md inside ``outdir``."""
    try:
        return Path(os.path.relpath(path, outdir)).as_posix()
    except ValueError:  # another drive on Windows
        return path.as_posix()


def _write_all(descriptor: int, data: bytes) -> None:
    """os.write until every byte is written (a nearly full disk writes short, then fails)."""
    view = memoryview(data)
    while view:
        written = os.write(descriptor, view)
        if written <= 0:
            raise OSError(f"wrote nothing of {len(view)} bytes")
        view = view[written:]


def _append_both(parts: Sequence[tuple[Path, bytes]]) -> None:
    """Append each part to its file; on any failure cut every file back and re-raise, with
    ``filename`` set to the file that failed."""
    opened: list[tuple[int, int]] = []  # (descriptor, length before)
    try:
        for path, data in parts:
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
                opened.append((descriptor, os.fstat(descriptor).st_size))
                _write_all(descriptor, data)
            except OSError as error:
                error.filename = str(path)
                for done, length in opened:
                    os.ftruncate(done, length)
                raise
    finally:
        for descriptor, _ in opened:
            os.close(descriptor)


def append_logs(outdir: str | os.PathLike[str], entries: Sequence[tuple[str, Path, str]]) -> None:
    """Append ``[N] path: command`` lines to invoke_log.txt and one block per file to
    invoke_log.md (``## name``, the image, the command in a code block); all or nothing.

    Raises OutputError naming the log file and the OS reason; neither log then holds any of
    these entries.
    """
    if not entries:
        return
    directory = OutputDir(outdir).ensure()
    text = "".join(f"[{label}] {path}: {command}\n" for label, path, command in entries)
    markdown = "".join(
        f"## {Path(path).name}\n![]({_markdown_target(directory, Path(path))})\n"
        f"```\n{command}\n```\n\n"
        for _, path, command in entries
    )
    parts = [(directory / LOG_TXT, text.encode("utf-8")),
             (directory / LOG_MD, markdown.encode("utf-8"))]
    try:
        with OutputDir(directory).lock():
            _append_both(parts)
    except OSError as error:
        where = error.filename if error.filename else str(directory)
        raise OutputError(f"cannot append to the log {where!r}: {error.strerror or error}; "
                          "neither log lists this command's files (the images are saved)") \
            from error
