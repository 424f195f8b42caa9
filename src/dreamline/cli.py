"""``dreamline``: launch options, then the invoke> REPL, a --from_file run or piped lines.

The per-line defaults (-s -W -H -C -A -f -g) come from the switch table, so a launch option is
read and checked exactly like the same switch on a prompt line, and each line may still override
it for itself only.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":  # python -m dreamline.cli: through dreamline.start, before torch
    from dreamline.start import main as _guarded  # is imported, so Ctrl-C then is quiet too

    sys.exit(_guarded())

import argparse
import dataclasses
from collections.abc import Sequence
from typing import BinaryIO

from dreamline import __version__, launch_options, switches
from dreamline.batch.launch import BatchPlan, plan_batch, start_lines
from dreamline.errors import DreamlineError, ModelError
from dreamline.launch_paths import check_launch_paths
from dreamline.lora_tags import lora_folder
from dreamline.models.manager import (BUILTIN_FALLBACK, ModelManager, default_models_file,
                                      models_file_for)
from dreamline.repl.context import Flow
from dreamline.repl.forecast import ask_at_terminal
from dreamline.repl.lines import decode_lines
from dreamline.repl.prompt import make_prompt_session
from dreamline.repl.runner import ModelGenerators, Runner
from dreamline.repl.session import Session
from dreamline.repl.settings import Settings
from dreamline.start import stopped


def build_parser() -> argparse.ArgumentParser:
    """The launch parser (launch_options.py), its help naming the default models file."""
    return launch_options.build_parser(default_models_file())


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


def make_model_manager(settings: Settings, wanted: str | None) -> ModelManager:
    """The session's model manager: registry, device, load/switch and the model cache.

    The models file is read now, so that a broken one is found before any line runs; the
    manager then offers the built-in demo model, its ``problem`` the one line saying why.
    """
    models = ModelManager(models_file=models_file_for(settings.config),
                          device=settings.device, precision=settings.precision,
                          wanted=wanted, say=_say, vae=settings.vae,
                          vae_tiling=settings.vae_tiling)
    try:
        models.registry()
    except ModelError as exc:
        models.use_builtin_models(f"{exc}; {BUILTIN_FALLBACK}")
    return models


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dreamline`` console script; returns the exit status.  Ctrl-C
    before the REPL or the batch run has its own handling is status 130 and one short line
    (dreamline.start), not a traceback."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        return stopped()


def _main(argv: Sequence[str] | None) -> int:
    from dreamline.models.offline import go_offline

    go_offline()  # before any hub library is imported: nothing is ever fetched
    args = build_parser().parse_args(argv)
    try:
        check_launch_paths(args)
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
    problem = models.problem  # said once here, before any line; !models repeats it
    if problem is not None:
        if not interactive:  # a batch meant for the user's models must not run on the demo's
            print(f"dreamline: error: {problem.removesuffix('; ' + BUILTIN_FALLBACK)}",
                  file=sys.stderr)
            return 2
        print(f"dreamline: error: {problem}", file=sys.stderr)
    settings.lora_folder = lora_folder(models_file_for(settings.config))
    generators = ModelGenerators(models, say=_say, models_file=models_file_for(settings.config),
                                 embedding_paths=settings.embedding_path,
                                 compile_unet=settings.compile_unet)
    if settings.embedding_path:  # a file named at launch that is no embedding: said now, not
        try:                     # by every line
            generators.parts()
        except DreamlineError as exc:
            print(f"dreamline: error: {exc}", file=sys.stderr)
            return 2
    runner = Runner(settings, generators, say=_say,  # a very long line asks first at a terminal
                    confirm=ask_at_terminal if interactive else None)
    session = Session(settings, models, runner, interactive=interactive)
    session.embedding_source = lambda: generators.parts()[0]
    return _run(args, plan, session, generators, stream, interactive)


def _run(args: argparse.Namespace, plan: BatchPlan, session: Session,
         generators: ModelGenerators, stream: BinaryIO | None, interactive: bool) -> int:
    """The session's lines: a --from_file run, piped lines or the prompt; the exit status."""
    settings = session.settings
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
            return session.run_source(lines, source="standard input" if args.from_file == "-"
                                      else args.from_file)
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
        print(f"dreamline: warning: {exc}; going on with {device} instead", file=sys.stderr)
    try:
        choose_dtype(device, settings.precision)
    except DeviceError as exc:
        if not interactive:
            print(f"dreamline: error: {exc}", file=sys.stderr)
            return None
        print(f"dreamline: warning: {exc}; going on with the automatic precision instead",
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
    session.error(f"warning: --model {settings.model}: {failed[0]}; using the default model "
                  f"instead")
    models = make_model_manager(settings, None)
    generators.models = models
    session.use_models(models)
    return _start_model(session, generators, dataclasses.replace(settings, model=None), True)


def _open_lines(source: str) -> BinaryIO:
    if source == "-":
        return sys.stdin.buffer
    try:
        stream = open(source, "rb")  # noqa: SIM115 (closed by the caller's with-block)
        head = stream.peek(8192)[:8192]
    except OSError as exc:
        raise DreamlineError(f"--from_file: cannot read {source}: {exc.strerror}") from exc
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # a byte-order mark of UTF-16
        stream.close()
        raise DreamlineError(f"--from_file: {source} is UTF-16 text; expected UTF-8 (save it "
                             "as UTF-8)")
    if b"\0" in head:  # a picture or other binary file: one line, not one error per "line"
        stream.close()
        raise DreamlineError(f"--from_file: {source} is not a text file; expected prompt "
                             "lines, one a line (!fetch reads the command stored in a picture)")
    return stream


class _no_close:
    """Context manager that leaves sys.stdin open."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def __enter__(self) -> BinaryIO:
        return self.stream

    def __exit__(self, *exc: object) -> None:
        return None

