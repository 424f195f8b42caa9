"""A prompt line's input files: -I / -M paths found as typed or in the output folder, and the
prompt an empty line takes from its -I picture."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dreamline.errors import DreamlineError
from dreamline.regular_files import IMAGE_FILE, file_error_message, file_problem
from dreamline.repl.lines import shown
from dreamline.request import Request


def find_image(path_text: str, outdir: Path, what: str = "image") -> Path:
    """``path_text`` as typed, else inside ``outdir`` (relative paths only); a regular file
    either way.  Raises DreamlineError naming ``what`` ("init image", "mask") and the
    path: missing (looked here and in ``outdir``), a directory, a FIFO or device, unreadable."""
    path = Path(path_text).expanduser()
    problem = file_problem(path)
    if problem is None:
        return path
    in_outdir = outdir / path
    if not path.is_absolute():
        found = file_problem(in_outdir)
        if found is None:
            return in_outdir
        if problem == "no such file" and found != "no such file":
            raise DreamlineError(file_error_message(in_outdir, what, found, IMAGE_FILE))
        if problem == "no such file":
            problem = f"no such file (looked here and in {outdir})"
    raise DreamlineError(file_error_message(path_text, what, problem, IMAGE_FILE))


# An init image with more than this many times the pixels of the line's -W x -H (or, without
# them, of the size its model declares it was made for) is fitted into that box unless the line
# gives --fit: the demo model (32x32) at a 512x512 sketch's own size ran 39 minutes and drew grey
# specks.
AUTO_FIT_AREA_RATIO = 2.0


def auto_fit(request: Request, image_path: str, native: tuple[str, int, int] | None,
             say: Callable[[str], None]) -> dict[str, object]:
    """The changes that fit ``image_path`` (said in one line) into the line's -W x -H, or
    without them into the model's declared size, when the image has more than
    AUTO_FIT_AREA_RATIO times that area; none when the line gives --fit, the box is unknown (no
    -W/-H and no declared size), the image cannot be read (loading it will say why), or it is
    not much larger.  (The reference kept an init image's own size without --fit whatever -W/-H
    said: a 1536x1024 sketch with -W 64 -H 32 then ran for hours on the demo model.)"""
    given = request.width is not None or request.height is not None
    if request.fit or (native is None and not given):
        return {}
    from dreamline.image_files import image_size

    size = image_size(image_path)
    if size is None:
        return {}
    if given:
        # a side not given is the image's own: only what the line asks for is a limit
        width = request.width if request.width is not None else size[0]
        height = request.height if request.height is not None else size[1]
        why = f", much larger than -W {width} -H {height}"
        keep = "give -W/-H of its own size to keep it"
    elif native is not None:
        model, width, height = native
        why = f" and model {model!r} was made for {width}x{height}"
        keep = "for another size give --fit with -W/-H"
    else:
        return {}
    if size[0] * size[1] <= AUTO_FIT_AREA_RATIO * width * height:
        return {}
    say(f">> the init image is {size[0]}x{size[1]}{why}: fitting it into {width}x{height} "
        f"(--fit); {keep}")
    return {"fit": True, "width": width, "height": height}


def prepare_request(request: Request, outdir: Path, say: Callable[[str], None],
                    native: tuple[str, int, int] | None = None) -> Request:
    """Resolve the init/mask paths; fit a much larger init image into the model's declared
    ``native`` size (see ``auto_fit``); an empty prompt with -I takes the prompt stored in that
    picture when it has one, else runs with the empty prompt (and says so)."""
    changes: dict[str, object] = {}
    if request.init_img is not None:
        changes["init_img"] = str(find_image(request.init_img, outdir, "init image"))
        changes.update(auto_fit(request, str(changes["init_img"]), native, say))
    if request.init_mask is not None:
        changes["init_mask"] = str(find_image(request.init_mask, outdir, "mask"))
    if not request.prompt.strip() and request.init_img is not None:
        from dreamline.pngmeta.chunks import MetadataError
        from dreamline.repl.fetch import NoMetadata, read_prompt

        image = str(changes["init_img"])
        try:
            stored = read_prompt(image)
        except NoMetadata:
            stored = ""
        except MetadataError as error:  # metadata there, but not usable: say why
            reason = str(error).removeprefix(f"{image}: ")
            say(f">> the prompt stored in {image} cannot be read ({reason}); running with "
                "the empty prompt")
            return request.with_changes(**changes)
        if stored:
            say(f">> using the prompt stored in {image}: {shown(stored)}")
            changes["prompt"] = stored
        else:
            say(f">> {image} has no stored prompt; running with the empty prompt")
    return request.with_changes(**changes) if changes else request


def unused_size_note(request: Request, size: tuple[int, int]) -> str | None:
    """The line's -W/-H are used for an init image only with --fit (as in the reference): the
    one line saying so when they differ from the ``size`` (width, height) that runs; None when
    they are used, not given, or the same as that size."""
    if request.fit or (request.width, request.height) == (None, None):
        return None
    given = (request.width if request.width is not None else size[0],
             request.height if request.height is not None else size[1])
    if given == size:
        return None
    asked = " ".join(f"{name} {value}" for name, value in (("-W", request.width),
                                                          ("-H", request.height))
                     if value is not None)
    return (f">> {asked} not used: without --fit an init image keeps its own size, "
            f"{size[0]}x{size[1]}; add --fit to fit it inside -W x -H")


def prepare_line_init(request: Request, model: Any, say: Callable[[str], None]) -> Any:
    """The line's init image (and mask) read, fitted and hashed for ``model`` (a LoadedModel):
    a PreparedInit, None for txt2img.  Its notes and, when the line's -W/-H are not used,
    ``unused_size_note`` go to ``say``.  Raises ImageError for a file the user must fix."""
    from dreamline.init_input import prepare_init

    if not request.is_img2img:
        return None
    init = prepare_init(request, default_size=(model.default_width, model.default_height),
                        multiple=model.size_multiple, report=lambda text: say(f">> {text}"))
    note = unused_size_note(request, init.image.size) if init is not None else None
    if note is not None:
        say(note)
    return init


def run_size(request: Request, model: Any, init: Any) -> str:
    """'WxH', the size a line runs at: its init image's (``init``, a PreparedInit) when it has
    one, else -W/-H or the model's default; 'this size' when unknown (no model here)."""
    if init is not None:
        width, height = init.image.size
        return f"{width}x{height}"
    width = request.width if request.width is not None else getattr(model, "default_width", None)
    height = request.height if request.height is not None else \
        getattr(model, "default_height", None)
    return f"{width}x{height}" if width and height else "this size"
