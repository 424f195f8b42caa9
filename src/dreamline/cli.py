"""``dreamline``: launch options, then the invoke> REPL, a --from_file run or piped lines.

The per-line defaults (-s -W -H -C -A -f -g) come from the switch table, so a launch option is
read and checked exactly like the same switch on a prompt line, and each line may still override
it for itself only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from dreamline import __version__, switches
from dreamline.errors import DreamlineError
from dreamline.repl.commands import Flow
from dreamline.repl.runner import Runner, default_models_file
from dreamline.repl.session import Session
from dreamline.repl.settings import DEFAULT_OUTDIR, Settings

PRECISION_CHOICES = ("auto", "float32", "float16", "bfloat16", "autocast")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dreamline",
        description="An invoke>-style command line for Stable Diffusion (txt2img and img2img). "
                    "Type prompt lines at the invoke> prompt, pipe them in, or give --from_file.",
        epilog="At the prompt: '-h' lists the switches of a prompt line, '!help' the commands.",
    )
    parser.add_argument("-o", "--outdir", type=Path, default=DEFAULT_OUTDIR,
                        help=f"where images, logs and the history go (default: {DEFAULT_OUTDIR})")
    parser.add_argument("--from_file", metavar="PATH|-",
                        help="run each line of this file ('-' for stdin), then exit")
    parser.add_argument("--model", metavar="NAME|PATH",
                        help="a model named in the models file, or a path to one "
                             "(default: the file's default, else the built-in demo model)")
    parser.add_argument("-c", "--config", type=Path, metavar="FILE",
                        help=f"the models file (default: {default_models_file()})")
    parser.add_argument("--vae", type=Path, metavar="PATH",
                        help="a VAE file (.pt, .ckpt, .safetensors) or diffusers vae/ folder to "
                             "use instead of each model's own (default: the model's, or a "
                             "<checkpoint>.vae.pt/.safetensors/.ckpt beside it)")
    parser.add_argument("--precision", choices=PRECISION_CHOICES, default="auto",
                        help="float type to run in; auto = float16 on CUDA, float32 elsewhere "
                             "(autocast is the reference's name for auto)")
    parser.add_argument("-F", "--full_precision", action="store_true",
                        help="same as --precision float32")
    parser.add_argument("-p", "--prompt_as_dir", action="store_true",
                        help="put each command's images in a sub-directory named after its prompt")
    parser.add_argument("--device", metavar="DEVICE",
                        help="cpu, cuda, cuda:N or mps (default: the best one present)")
    parser.add_argument("--log_file", type=Path, metavar="FILE",
                        help="where tracebacks of internal errors go "
                             "(default: <outdir>/dreamline-errors.log)")
    parser.add_argument("--version", action="version", version=f"dreamline {__version__}")
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


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from parsed options; a bad default raises a one-line RequestError."""
    values = {switch.field: getattr(args, switch.field) for switch in switches.launch_switches()}
    given = frozenset(str(name) for name, value in values.items() if value is not None)
    precision = "float32" if args.full_precision else args.precision
    if precision == "autocast":
        precision = "auto"
    return Settings(
        outdir=args.outdir,
        defaults=switches.launch_defaults(values),
        launch_given=given,
        model=args.model,
        config=args.config,
        device=args.device,
        precision=precision,
        prompt_as_dir=args.prompt_as_dir,
        log_file=args.log_file,
        vae=args.vae,
    )


def _say(text: str) -> None:
    print(text, flush=True)


def _open_lines(source: str) -> TextIO:
    if source == "-":
        return sys.stdin
    try:
        return open(source, encoding="utf-8")
    except OSError as exc:
        raise DreamlineError(f"--from_file: cannot read {source}: {exc.strerror}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dreamline`` console script; returns the exit status."""
    from dreamline.models.offline import go_offline

    go_offline()  # before any hub library is imported: nothing is ever fetched
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
    except DreamlineError as exc:
        print(f"dreamline: error: {exc}", file=sys.stderr)
        return 2
    interactive = args.from_file is None and sys.stdin.isatty()
    if interactive:  # before the Session, which may say the model's default -C
        _say(f"dreamline {__version__}: type a prompt and switches ('-h' for help), '!help' for "
             f"commands, 'q' or Ctrl-D to quit")
    runner = Runner(settings, say=_say)
    session = Session(settings, runner, interactive=interactive)
    if args.from_file is not None:
        try:
            stream = _open_lines(args.from_file)
        except DreamlineError as exc:
            session.error(f"error: {exc}")
            return 2
        with stream if stream is not sys.stdin else _no_close(stream):
            return session.run_lines(stream, source=args.from_file)
    if not interactive:
        return session.run_lines(sys.stdin, source="stdin")
    session.guarded(lambda: _preload(runner), "(loading the model at start)")
    return session.run_interactive(session.make_prompt_session())


def _preload(runner: Runner) -> Flow:
    """Load the model before the first prompt, so the toolbar shows it; failures are one line."""
    runner.generator()
    return Flow.GO_ON


class _no_close:
    """Context manager that leaves sys.stdin open."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __enter__(self) -> TextIO:
        return self.stream

    def __exit__(self, *exc: object) -> None:
        return None


if __name__ == "__main__":
    sys.exit(main())
