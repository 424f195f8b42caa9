"""The ONE table of launch options (``dreamline --device cuda ...``) and the parser made from it.

Torch-free, so the prompt-line parser can read the same table: a launch option typed on a
prompt line is named as one ("give it when dreamline starts") instead of an unknown switch.
The per-line defaults (-s -W -H -C -A -f -g) come from the switch table (switches.py).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dreamline import __version__, switches
from dreamline.errors import DreamlineError

PRECISION_CHOICES = ("auto", "float32", "float16", "bfloat16", "autocast")
DEFAULT_OUTDIR = Path("outputs") / "img-samples"


def whole_number(raw: str) -> int:
    """A launch option's whole number, ASCII digits only (as the per-line switches take)."""
    from dreamline.switch_values import parse_int

    try:
        return parse_int(raw, "value", "ASCII digits, e.g. 2")
    except DreamlineError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("value: ")) from None


def decimal_number(raw: str) -> float:
    """A launch option's decimal number, ASCII digits only (as the per-line switches take)."""
    from dreamline.switch_values import parse_float

    try:
        return parse_float(raw, "value", "a decimal number such as 0.5 or 2")
    except DreamlineError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("value: ")) from None


def path_of(expected: str) -> Callable[[str], Path]:
    """An argparse type for a path option: an empty or blank value is refused (``Path('')``
    would be the current directory), saying what was ``expected``."""

    def convert(raw: str) -> Path:
        if not raw.strip():
            raise argparse.ArgumentTypeError(f"{raw!r} is an empty path; expected {expected}")
        return Path(raw).expanduser()  # ~/out: the home folder, as a shell would expand it

    return convert


def text_path(expected: str) -> Callable[[str], str]:
    """As ``path_of``, for an option kept as its text (--from_file, --each_image)."""

    check = path_of(expected)

    def convert(raw: str) -> str:
        check(raw)
        return os.path.expanduser(raw)

    return convert


@dataclass(frozen=True)
class LaunchOption:
    """One launch-only option: its names, argparse's keyword arguments, its help group, and
    what a prompt line uses instead (said when the option is typed at the prompt)."""

    names: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    batch: bool = False  # in the "batch runs" help group
    at_prompt: str = ""  # e.g. "!switch NAME"


LAUNCH_OPTIONS: tuple[LaunchOption, ...] = (
    LaunchOption(("-o", "--outdir"), dict(
        type=path_of("a directory path"), default=DEFAULT_OUTDIR,
        help=f"where images, logs and the history go (default: {DEFAULT_OUTDIR})")),
    LaunchOption(("--from_file",), dict(
        metavar="PATH|-", type=text_path("a file of prompt lines, or - for stdin"),
        help="run each line of this file ('-' for stdin), then exit"), at_prompt="!replay FILE"),
    LaunchOption(("--model",), dict(
        metavar="NAME|PATH", type=text_path("a model name or path"),
        help="a model named in the models file, or a path to one "
             "(default: the file's default, else the built-in demo model)"),
        at_prompt="!switch NAME|PATH"),
    LaunchOption(("-c", "--config"), dict(
        type=path_of("a models.yaml file"), metavar="FILE",
        help="the models file (default: {models_file})")),
    LaunchOption(("--embedding_path",), dict(
        type=path_of("an embedding file or folder"), metavar="FILE|DIR", action="append",
        default=[],
        help="textual-inversion embeddings (A1111 .pt/.safetensors, diffusers learned_embeds), "
             "each used as <name> in prompts; may be repeated (an embeddings/ folder beside the "
             "models file is always read)")),
    LaunchOption(("--vae",), dict(
        type=path_of("a VAE file or folder"), metavar="PATH",
        help="a VAE file (.pt, .ckpt, .safetensors) or diffusers vae/ folder to use instead of "
             "each model's own (default: the model's, or a <checkpoint>.vae.pt/.safetensors/"
             ".ckpt beside it)")),
    LaunchOption(("--vae_tiling",), dict(
        action="store_true",
        help="encode and decode images larger than the VAE's tile (SD 1.x: 512 pixels) in "
             "overlapping tiles: less memory; pixels near the tile seams change slightly, "
             "smaller images not at all")),
    LaunchOption(("--precision",), dict(
        choices=PRECISION_CHOICES, default="auto", type=str.lower,  # FLOAT32 is float32
        help="float type to run in; auto = float16 on CUDA, float32 elsewhere (autocast is the "
             "reference's name for auto)")),
    LaunchOption(("-F", "--full_precision"), dict(
        action="store_true", help="same as --precision float32")),
    LaunchOption(("-p", "--prompt_as_dir"), dict(
        action="store_true",
        help="put each command's images in a sub-directory named after its prompt")),
    LaunchOption(("--device",), dict(
        metavar="DEVICE", help="cpu, cuda, cuda:N or mps (default: the best one present)")),
    LaunchOption(("--threads",), dict(
        type=whole_number, metavar="N",
        help="CPU threads for torch (default: the cores free now; OMP_NUM_THREADS also sets "
             "it)")),
    LaunchOption(("--compile",), dict(
        action="store_true",
        help="run the UNet through torch.compile: compiled once per model and image size "
             "(minutes on a CPU, said in one line); pixels may differ slightly from a run "
             "without it")),
    LaunchOption(("--log_file",), dict(
        type=path_of("a file path"), metavar="FILE",
        help="where tracebacks of internal errors go (default: <outdir>/dreamline-errors.log)")),
    LaunchOption(("--resume",), dict(
        action="store_true",
        help="skip the lines that an earlier run of the same file finished (see "
             "dreamline-manifest.jsonl in the output folder) and run the rest"), batch=True),
    LaunchOption(("--each_image",), dict(
        metavar="DIR", type=text_path("a folder of images"),
        help="run every prompt line once per image in DIR (as its -I), in name order; outputs "
             "are named NNNNNN.<seed>.<image name>.png"), batch=True),
    LaunchOption(("--ray",), dict(
        nargs="?", const="", metavar="ADDRESS",
        help="spread the lines over Ray workers: no ADDRESS starts a local Ray, 'auto' or "
             "ray://host:port joins a cluster (pip install 'dreamline[ray]')"), batch=True),
    LaunchOption(("--ray_workers",), dict(
        type=whole_number, metavar="N",
        help="how many Ray workers (default: one per GPU, else one per --ray_cpus CPU cores)"),
        batch=True),
    LaunchOption(("--ray_cpus",), dict(
        type=decimal_number, default=1.0, metavar="N",
        help="CPU cores per worker on a cluster without GPUs (default: 1)"), batch=True),
    LaunchOption(("--version",), dict(action="version", version=f"dreamline {__version__}")),
)


def launch_only(name: str) -> LaunchOption | None:
    """The launch-only option a switch word names (``--device``, ``--device=cuda``, ``-F``),
    or None; the per-line switches (``-o``, ``-s``...) are not launch-only."""
    word = name.partition("=")[0]
    if word in switches.BY_NAME:
        return None
    for option in LAUNCH_OPTIONS:
        if word in option.names:
            return option
    return None


def build_parser(models_file: Path | str = "configs/models.yaml") -> argparse.ArgumentParser:
    """The launch parser; ``models_file`` is the default models file its help names."""
    parser = argparse.ArgumentParser(
        prog="dreamline",
        description="An invoke>-style command line for Stable Diffusion (txt2img and img2img). "
                    "Type prompt lines at the invoke> prompt, pipe them in, or give --from_file.",
        epilog="At the prompt: '-h' lists the switches of a prompt line, '!help' the commands.",
    )
    batch = parser.add_argument_group("batch runs (with --from_file)")
    for option in LAUNCH_OPTIONS:
        options = dict(option.options)
        if "help" in options:
            options["help"] = options["help"].replace("{models_file}", str(models_file))
        (batch if option.batch else parser).add_argument(*option.names, **options)
    defaults = parser.add_argument_group(
        "defaults for every prompt line (a line may override them for itself)")
    for switch in switches.launch_switches():
        names = [name for name in switch.names if name not in ("-h", "--help")]
        if switch.kind.takes_value:
            defaults.add_argument(*names, dest=switch.field, metavar=switch.metavar,
                                  default=None, help=f"{switch.help} ({switch.expected})")
        else:
            defaults.add_argument(*names, dest=switch.field, action="store_true", default=None,
                                  help=switch.help)
    return parser
