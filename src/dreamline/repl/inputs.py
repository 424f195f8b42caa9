"""A prompt line's input files: -I / -M paths found as typed or in the output folder, and the
prompt an empty line takes from its -I picture."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dreamline.errors import DreamlineError
from dreamline.repl.lines import shown
from dreamline.request import Request


def find_image(path_text: str, outdir: Path) -> Path:
    """``path_text`` as typed, else inside ``outdir``; DreamlineError naming it if neither."""
    path = Path(path_text).expanduser()
    if path.is_file():
        return path
    in_outdir = outdir / path
    if not path.is_absolute() and in_outdir.is_file():
        return in_outdir
    if path.is_dir():
        raise DreamlineError(f"{path_text}: is a directory; expected an image file")
    raise DreamlineError(f"{path_text}: no such file (looked here and in {outdir})")


def prepare_request(request: Request, outdir: Path, say: Callable[[str], None]) -> Request:
    """Resolve the init/mask paths; an empty prompt with -I takes the prompt stored in that
    picture when it has one, else runs with the empty prompt (and says so)."""
    changes: dict[str, object] = {}
    if request.init_img is not None:
        changes["init_img"] = str(find_image(request.init_img, outdir))
    if request.init_mask is not None:
        changes["init_mask"] = str(find_image(request.init_mask, outdir))
    if not request.prompt.strip() and request.init_img is not None:
        from dreamline.pngmeta.chunks import MetadataError
        from dreamline.repl.fetch import read_prompt

        image = str(changes["init_img"])
        try:
            stored = read_prompt(image)
        except MetadataError:
            stored = ""
        if stored:
            say(f">> using the prompt stored in {image}: {shown(stored)}")
            changes["prompt"] = stored
        else:
            say(f">> {image} has no stored prompt; running with the empty prompt")
    return request.with_changes(**changes) if changes else request
