"""``dreamline``: launch options, then the invoke> REPL, a --from_file run or piped lines.

The per-line defaults (-s -W -H -C -A -f -g) come from the switch table, so a launch option is
read and checked exactly like the same switch on a prompt line, and each line may still override
it for itself only.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from dreamline import __version__, switches
from dreamline.batch.launch import plan_batch, start_lines
from dreamline.errors import DreamlineError, ModelError
from dreamline.lora_tags import lora_folder
from dreamline.models.manager import ModelManager, default_models_file, models_file_for
from dreamline.repl.context import Flow
from dreamline.repl.forecast import ask_at_terminal
from dreamline.repl.lines import decode_lines
from dreamline.repl.prompt import make_prompt_session
from dreamline.repl.runner import ModelGenerators, Runner
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
    parser.add_argument("--embedding_path", type=Path, metavar="FILE|DIR", action="append",
                        default=[],
                        help="textual-inversion embeddings (A1111 .pt/.safetensors, diffusers "
                             "learned_embeds), each used as <name> in prompts; may be repeated "
                             "(an embeddings/ folder beside the models file is always read)")
    parser.add_argument("--vae", type=Path, metavar="PATH",
                        help="a VAE file (.pt, .ckpt, .safetensors) or diffusers vae/ folder to "
                             "use instead of each model's own (default: the model's, or a "
                             "<checkpoint>.vae.pt/.safetensors/.ckpt beside it)")
    parser.add_argument("--vae_tiling", action="store_true",
                        help="encode and decode images larger than the VAE's tile (SD 1.x: "
                             "512 pixels) in overlapping tiles: less memory; pixels near the "
                             "tile seams change slightly, smaller images not at all")
    parser.add_argument("--precision", choices=PRECISION_CHOICES, default="auto",
                        help="float type to run in; auto = float16 on CUDA, float32 elsewhere "
                             "(autocast is the reference's name for auto)")
    parser.add_argument("-F", "--full_precision", action="store_true",
                        help="same as --precision float32")
    parser.add_argument("-p", "--prompt_as_dir", action="store_true",
                        help="put each command's images in a sub-directory named after its prompt")
    parser.add_argument("--device", metavar="DEVICE",
                        help="cpu, cuda, cuda:N or mps (default: the best one present)")
    parser.add_argument("--threads", type=_whole_number, metavar="N",
                        help="CPU threads for torch (default: the cores free now; "
                             "OMP_NUM_THREADS also sets it)")
    parser.add_argument("--compile", action="store_true",
                        help="run the UNet through torch.compile: compiled once per model and "
                             "image size (minutes on a CPU, said in one line); pixels may "
                             "differ slightly from a run without it")
    parser.add_argument("--log_file", type=Path, metavar="FILE",
                        help="where tracebacks of internal errors go "
                             "(default: <outdir>/dreamline-errors.log)")
    batch = parser.add_argument_group("batch runs (with --from_file)")
    batch.add_argument("--resume", action="store_true",
                       help="skip the lines that an earlier run of the same file finished (see "
                            "dreamline-manifest.jsonl in the output folder) and run the rest")
    batch.add_argument("--each_image", metavar="DIR",
                       help="run every prompt line once per image in DIR (as its -I), in name "
                            "order; outputs are named NNNNNN.<seed>.<image name>.png")
    batch.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                       help="spread the lines over Ray workers: no ADDRESS starts a local Ray, "
                            "'auto' or ray://host:port joins a cluster (pip install "
                            "'dreamline[ray]')")
    batch.add_argument("--ray_workers", type=_whole_number, metavar="N",
                       help="how many Ray workers (default: one per GPU, else one per "
                            "--ray_cpus CPU cores)")
    batch.add_argument("--ray_cpus", type=_decimal_number, default=1.0, metavar="N",
                       help="CPU cores per worker on a cluster without GPUs (default: 1)")
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
    values = {switch.field: getattr(args, switch.field) for switch in switches.launch_switches()
              if switch.field is not None}
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
        vae_tiling=args.vae_tiling,
        embedding_path=tuple(args.embedding_path),
        compile_unet=args.compile,
    )


def _say(text: str) -> None:
    print(text, flush=True)


BANNER = ("dreamline {version}: type a prompt and switches ('-h' for help),",
          "'!help' for commands, 'q' or Ctrl-D to quit")


def _whole_number(raw: str) -> int:
    """A launch option's whole number, ASCII digits only (as the per-line switches take)."""
    from dreamline.switch_values import parse_int

    try:
        return parse_int(raw, "value", "ASCII digits, e.g. 2")
    except DreamlineError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("value: ")) from None


def _decimal_number(raw: str) -> float:
    """A launch option's decimal number, ASCII digits only (as the per-line switches take)."""
    from dreamline.switch_values import parse_float

    try:
        return parse_float(raw, "value", "a decimal number such as 0.5 or 2")
    except DreamlineError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("value: ")) from None


def make_model_manager(settings: Settings, wanted: str | None) -> ModelManager:
    """The session's model manager: registry, device, load/switch and the model cache."""
    return ModelManager(models_file=models_file_for(settings.config),
                        device=settings.device, precision=settings.precision,
                        wanted=wanted, say=_say, vae=settings.vae,
                        vae_tiling=settings.vae_tiling)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dreamline`` console script; returns the exit status."""
    from dreamline.models.offline import go_offline

    go_offline()  # before any hub library is imported: nothing is ever fetched
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
        plan = plan_batch(args)
    except DreamlineError as exc:
        print(f"dreamline: error: {exc}", file=sys.stderr)
        return 2
    interactive = args.from_file is None and sys.stdin.isatty()
    if interactive:  # before the Session, which may say the model's default -C
        for line in BANNER:
            _say(line.format(version=__version__))
    checked = _machine(args, settings, interactive)
    if checked is None:
        return 2
    settings = checked
    stream: BinaryIO | None = None
    if args.from_file is not None:
        try:
            stream = _open_lines(args.from_file)
        except DreamlineError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    models = make_model_manager(settings, settings.model)
    settings.lora_folder = lora_folder(models_file_for(settings.config))
    generators = ModelGenerators(models, say=_say, models_file=models_file_for(settings.config),
                                 embedding_paths=settings.embedding_path,
                                 compile_unet=settings.compile_unet)
    runner = Runner(settings, generators, say=_say,  # a very long line asks first at a terminal
                    confirm=ask_at_terminal if interactive else None)
    session = Session(settings, models, runner, interactive=interactive)
    session.embedding_source = lambda: generators.parts()[0]
    if stream is not None:
        with stream if args.from_file != "-" else _no_close(stream):
            status = _start_model(session, generators, settings, interactive) \
                if settings.model is not None else None
            if status is not None:
                return status
            try:
                lines = start_lines(plan, session, session.runner, decode_lines(stream))
            except DreamlineError as exc:  # the manifest cannot be read, the folder is gone
                print(f"dreamline: error: {exc}", file=sys.stderr)
                return 2
            if plan.ray is not None:
                from dreamline.batch.driver import run_on_ray

                return run_on_ray(plan, session, lines)
            return session.run_source(lines, source=args.from_file)
    if interactive or settings.model is not None:
        status = _start_model(session, generators, settings, interactive)
        if status is not None:
            return status
    if not interactive:
        binary = getattr(sys.stdin, "buffer", None)
        if binary is None:  # a replaced stdin without bytes (an embedding program)
            return session.run_lines(sys.stdin, source="stdin")
        return session.run_bytes(binary, source="stdin")
    return session.run_interactive(make_prompt_session(session))


def _machine(args: argparse.Namespace, settings: Settings, interactive: bool
             ) -> Settings | None:
    """Threads, --compile, device and precision, set and checked before any line; None: exit
    status 2."""
    from dreamline.threads import apply_threads

    try:
        _say(apply_threads(args.threads))
        if args.compile:
            from dreamline.core.compiled import check_compile_available

            check_compile_available(settings.device or "cpu")
    except DreamlineError as exc:
        print(f"dreamline: error: {exc}", file=sys.stderr)
        return None
    return check_device(settings, interactive)


def check_device(settings: Settings, interactive: bool) -> Settings | None:
    """--device and --precision checked at start-up, not when the first line runs.  One that
    this machine cannot provide is one line on stderr; at the prompt the best device (or the
    automatic precision) is used instead, as for a bad --model; otherwise None: exit status 2.
    """
    if settings.device is None and settings.precision == "auto":
        return settings  # nothing asked for: the best device present (no torch import here)
    from dreamline.devices import DeviceError, choose_device, choose_dtype

    try:
        device = choose_device(settings.device)
    except DeviceError as exc:
        if not interactive:
            print(f"dreamline: error: {exc}", file=sys.stderr)
            return None
        settings = dataclasses.replace(settings, device=None)
        device = choose_device(None)
        print(f"dreamline: error: {exc}; going on with {device} instead", file=sys.stderr)
    try:
        choose_dtype(device, settings.precision)
    except DeviceError as exc:
        if not interactive:
            print(f"dreamline: error: {exc}", file=sys.stderr)
            return None
        print(f"dreamline: error: {exc}; going on with the automatic precision instead",
              file=sys.stderr)
        settings = dataclasses.replace(settings, precision="auto")
    return settings


def _start_model(session: Session, generators: ModelGenerators, settings: Settings,
                 interactive: bool) -> int | None:
    """Load the model before the first line (the toolbar shows it; a bad --model is found at
    once).  A bad --model: at the prompt, one line and the default model instead; otherwise
    one line and status 2.  None: go on."""
    failed: list[DreamlineError] = []

    def load() -> Flow:
        try:
            session.models.current()
        except ModelError as exc:
            failed.append(exc)
        return Flow.GO_ON

    session.guarded(load, "(loading the model at start)")
    if not failed:
        return None
    if settings.model is None:
        session.error(f"error: the model cannot be loaded: {failed[0]}; !switch to another "
                      f"model (see !models)")
        return None
    if not interactive:
        session.error(f"error: --model {settings.model}: {failed[0]}")
        return 2
    session.error(f"error: --model {settings.model}: {failed[0]}; using the default model "
                  f"instead")
    models = make_model_manager(settings, None)
    generators.models = models
    session.use_models(models)
    return _start_model(session, generators, dataclasses.replace(settings, model=None), True)


def _open_lines(source: str) -> BinaryIO:
    if source == "-":
        return sys.stdin.buffer
    try:
        return open(source, "rb")
    except OSError as exc:
        raise DreamlineError(f"--from_file: cannot read {source}: {exc.strerror}") from exc


class _no_close:
    """Context manager that leaves sys.stdin open."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def __enter__(self) -> BinaryIO:
        return self.stream

    def __exit__(self, *exc: object) -> None:
        return None


if __name__ == "__main__":
    sys.exit(main())
