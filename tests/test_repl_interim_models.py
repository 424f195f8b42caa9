"""INTERIM -- delete with repl/interim_models.py at merge (models/manager.py has its own tests).

The stand-in ModelManager keeps today's behaviour: the model's default -C from its entry
without loading, the built-in demo registry, and a failed load remembered.
"""

from __future__ import annotations

from pathlib import Path

from dreamline.errors import ModelError
from dreamline.repl.interim_models import InterimModelManager, demo_registry

REPO = Path(__file__).resolve().parents[1]


def manager(models_file: Path | None, wanted: str | None = None,
            said: list[str] | None = None) -> InterimModelManager:
    return InterimModelManager(models_file=models_file, device="cpu", precision="float32",
                               wanted=wanted, say=(said if said is not None else []).append)


def test_model_default_comes_from_the_entry_without_loading(tmp_path: Path) -> None:
    yaml = tmp_path / "models.yaml"
    yaml.write_text("plain:\n  path: p\nlow:\n  path: w/low\n  cfg_scale: 3\n  default: true\n")
    assert manager(yaml).default_cfg() == ("low", 3.0, "its models.yaml entry")
    assert manager(yaml, "plain").default_cfg() is None
    path_named = manager(yaml, str(tmp_path / "w" / "low"))  # a path that the entry names
    assert path_named.default_cfg() == ("low", 3.0, "its models.yaml entry")
    elsewhere = manager(yaml, str(tmp_path / "elsewhere"))
    assert elsewhere.default_cfg() is None
    assert elsewhere.label == f"{tmp_path / 'elsewhere'} (not loaded yet)"  # nothing loaded


def test_model_default_of_an_unreadable_models_file_is_none(tmp_path: Path) -> None:
    yaml = tmp_path / "models.yaml"
    yaml.write_text("a:\n  path: x\n  cfg_scale: 500\n")
    assert manager(yaml).default_cfg() is None  # loading the model reports the bad entry
    assert manager(yaml).names() == []


def test_demo_model_defaults_to_guidance_4_with_or_without_a_models_file() -> None:
    assert manager(REPO / "configs" / "models.yaml").default_cfg() == \
        ("demo", 4.0, "its models.yaml entry")
    assert manager(None).default_cfg() == ("demo", 4.0, "its built-in entry")
    builtin = demo_registry().entry()
    assert (builtin.name, builtin.cfg_scale) == ("demo", 4.0)


def test_builtin_demo_entry_matches_the_shipped_one() -> None:
    from dreamline.models.registry import ModelRegistry

    shipped = ModelRegistry.load(REPO / "configs" / "models.yaml").entry("demo")
    builtin = demo_registry().entry("demo")
    assert (builtin.path, builtin.width, builtin.height, builtin.cfg_scale) == \
        (shipped.path, shipped.width, shipped.height, shipped.cfg_scale)


def test_a_failed_load_is_remembered_until_the_file_changes(tmp_path: Path) -> None:
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a model")
    said: list[str] = []
    models = manager(None, str(broken), said)
    errors = []
    for _ in range(2):
        try:
            models.current()
        except ModelError as exc:
            errors.append(exc)
    assert len(errors) == 2 and errors[0] is errors[1]  # the same error, not a second load
    assert sum("loading model" in line for line in said) <= 1
    broken.write_bytes(b"still not a model, but changed")
    try:
        models.current()
    except ModelError as exc:
        assert exc is not errors[0]  # the changed file was tried again
