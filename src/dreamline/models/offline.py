"""The hub libraries' offline switch, thrown on purpose by the program that loads models.

dreamline never downloads anything: every load names a local folder and passes
``local_files_only=True``.  ``go_offline()`` additionally tells huggingface_hub, diffusers and
transformers not to try the network at all (no telemetry, no "is there a newer file?" checks).
It is an explicit call (cli.main makes it before the first model load), never an import side
effect, so importing dreamline as a library leaves the caller's environment alone.
"""

from __future__ import annotations

import os
import sys

OFFLINE_VARIABLES: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}


def go_offline() -> None:
    """Put the hub libraries in offline mode, also when they are imported already.

    They read the environment when first imported, so the variables alone only help before
    that; an already-imported huggingface_hub gets its constant set as well.
    """
    for name, value in OFFLINE_VARIABLES.items():
        os.environ[name] = value
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None and hasattr(constants, "HF_HUB_OFFLINE"):
        constants.HF_HUB_OFFLINE = True  # type: ignore[attr-defined]
