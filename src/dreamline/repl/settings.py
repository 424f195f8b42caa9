"""Launch-time settings shared by the REPL pieces (filled in by cli.py from the command line)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dreamline.launch_options import DEFAULT_OUTDIR
from dreamline.request import Request

__all__ = ["DEFAULT_OUTDIR", "ModelDefault", "Settings"]
HISTORY_NAME = ".invoke_history"
ERROR_LOG_NAME = "dreamline-errors.log"


@dataclass(frozen=True)
class ModelDefault:
    """A default guidance scale that the current model's registry entry sets."""

    model: str  # the entry's name
    cfg_scale: float
    where: str  # for the message, e.g. "its models.yaml entry"


@dataclass(frozen=True)
class ModelSampler:
    """A default sampler (and its schedule type) that the current model's registry entry sets."""

    model: str  # the entry's name
    sampler: str  # our name, e.g. "k_dpmpp_2m"
    schedule: str  # "model", "karras" or "exponential"
    where: str


@dataclass
class Settings:
    """What the session was started with; the per-line defaults live in ``defaults``."""

    outdir: Path = DEFAULT_OUTDIR
    defaults: Request = field(default_factory=Request)
    # Request fields given as launch options: a launch -C must beat a model's own cfg_scale,
    # and defaults.cfg_scale alone cannot tell a typed 7.5 from the built-in one.
    launch_given: frozenset[str] = frozenset()
    model: str | None = None  # registry name or path; None: the registry's default
    config: Path | None = None  # the models.yaml file
    device: str | None = None  # None: the best one available
    precision: str = "auto"
    prompt_as_dir: bool = False
    log_file: Path | None = None  # where tracebacks go; None: <outdir>/dreamline-errors.log
    vae: Path | None = None  # --vae: a VAE file or folder used with every model
    vae_tiling: bool = False  # --vae_tiling: blended VAE tiles above the VAE's tile size
    embedding_path: tuple[Path, ...] = ()  # --embedding_path: textual-inversion files/folders
    lora_folder: Path | None = None  # where LoRA names are looked up (!fetch checks them)
    compile_unet: bool = False  # --compile: the UNet through torch.compile

    @property
    def launch_cfg_scale(self) -> bool:
        """True when -C/--cfg_scale was given at launch (it then beats the model's default)."""
        return "cfg_scale" in self.launch_given

    @property
    def history_path(self) -> Path:
        return self.outdir / HISTORY_NAME

    @property
    def error_log_path(self) -> Path:
        if self.log_file is not None:
            return self.log_file
        return self.outdir / ERROR_LOG_NAME
