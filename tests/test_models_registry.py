"""configs/models.yaml parsing: defaults, @builtin and relative paths, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from dreamline.errors import ModelError
from dreamline.models.registry import DATA_DIR, ModelRegistry

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conf" / "models.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_registry_has_the_demo_as_default() -> None:
    registry = ModelRegistry.load(REPO / "configs" / "models.yaml")
    assert registry.default_name == "demo"
    demo = registry.entry()
    assert demo.name == "demo"
    assert demo.path == DATA_DIR / "demo"
    assert (demo.width, demo.height) == (32, 32)
    assert demo.cfg_scale == 4.0  # measured best for the demo model (its MODEL_CARD.md)
    assert not registry.hash_cache_path.is_relative_to(REPO)  # never inside the checkout


def test_hash_cache_is_per_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = ModelRegistry.load(REPO / "configs" / "models.yaml")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert registry.hash_cache_path == tmp_path / "xdg" / "dreamline" / "model_hashes.json"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert registry.hash_cache_path == tmp_path / "home" / ".cache" / "dreamline" / \
        "model_hashes.json"


def test_prediction_type_field(tmp_path: Path) -> None:
    registry = ModelRegistry.load(write(tmp_path, "a:\n  path: x\n  prediction_type: v\n"
                                                  "b:\n  path: y\n  prediction_type: epsilon\n"
                                                  "c:\n  path: z\n"))
    assert [registry.entry(name).prediction_type for name in "abc"] == \
        ["v_prediction", "epsilon", None]
    with pytest.raises(ModelError, match=r"prediction_type is 'x0'; expected epsilon or "
                                         r"v_prediction"):
        ModelRegistry.load(write(tmp_path, "a:\n  path: x\n  prediction_type: x0\n"))


def test_paths_are_relative_to_the_yaml_and_builtin_is_the_data_dir(tmp_path: Path) -> None:
    path = write(tmp_path, """
first:
  path: weights/a.safetensors
  config: ../cfg
  description: the first
  width: 512
  height: 768
second:
  path: "@builtin/sd15"
  default: true
third:
  path: /abs/model
""")
    registry = ModelRegistry.load(path)
    assert registry.names == ["first", "second", "third"]
    assert registry.default_name == "second"
    first = registry.entry("first")
    assert first.path == (tmp_path / "conf" / "weights" / "a.safetensors").resolve()
    assert first.config == (tmp_path / "cfg").resolve()
    assert (first.width, first.height, first.description) == (512, 768, "the first")
    assert registry.entry("second").path == DATA_DIR / "sd15"
    assert registry.entry("third").path == Path("/abs/model")
    assert registry.entry("third").width is None


def test_cfg_scale_is_optional_and_read_as_a_float(tmp_path: Path) -> None:
    registry = ModelRegistry.load(write(tmp_path, """
whole:
  path: a
  cfg_scale: 4
zero:
  path: b
  cfg_scale: 0
top:
  path: c
  cfg_scale: 100.0
none:
  path: d
"""))
    scales = [registry.entry(name).cfg_scale for name in registry.names]
    assert scales == [4.0, 0.0, 100.0, None]
    assert isinstance(registry.entry("whole").cfg_scale, float)


def test_find_by_name_default_or_entry_path_without_raising(tmp_path: Path) -> None:
    registry = ModelRegistry.load(write(tmp_path, "a:\n  path: x\nb:\n  path: y\n"
                                                  "  default: true\n"))
    assert registry.find(None) is registry.entry("b")
    assert registry.find("a") is registry.entry("a")
    assert registry.find(str(tmp_path / "conf" / "x")) is registry.entry("a")
    assert registry.find("nope") is None
    assert registry.find(str(tmp_path / "elsewhere.safetensors")) is None


def test_without_a_default_the_first_entry_is_used(tmp_path: Path) -> None:
    registry = ModelRegistry.load(write(tmp_path, "b:\n  path: b\na:\n  path: a\n"))
    assert registry.default_name == "b"


def test_unknown_name_lists_the_known_ones(tmp_path: Path) -> None:
    registry = ModelRegistry.load(write(tmp_path, "alpha:\n  path: a\nbeta:\n  path: b\n"))
    with pytest.raises(ModelError, match=r"unknown model 'gamma'; known models: alpha, beta"):
        registry.entry("gamma")


@pytest.mark.parametrize("keys, sampler, schedule", [
    ('sampler: "DPM++ 2M Karras"', "k_dpmpp_2m", "karras"),        # A1111's label
    ("sampler: Euler a", "k_euler_a", "model"),
    ("sampler: dpmpp_2m\n  scheduler: karras", "k_dpmpp_2m", "karras"),  # ComfyUI's pair
    ("sampler: euler\n  scheduler: normal", "k_euler", "model"),
    ("sampler: k_dpmpp_2m\n  schedule: exponential", "k_dpmpp_2m", "exponential"),  # ours
    ("sampler: k_lms\n  schedule: Uniform", "k_lms", "model"),
    ("sampler: DDIM", "ddim", "model"),
    ('sampler: "DPM++ 2M Karras"\n  schedule: karras', "k_dpmpp_2m", "karras"),  # agreeing
])
def test_sampler_in_any_dialect(tmp_path: Path, keys: str, sampler: str, schedule: str) -> None:
    registry = ModelRegistry.load(write(tmp_path, f"a:\n  path: x\n  {keys}\nb:\n  path: y\n"))
    assert (registry.entry("a").sampler, registry.entry("a").schedule) == (sampler, schedule)
    assert (registry.entry("b").sampler, registry.entry("b").schedule) == (None, None)


@pytest.mark.parametrize("text, fragment", [
    ("a:\n  path: x\n  sampler: DPM++ 9M\n",
     "model 'a': sampler is 'DPM++ 9M'; expected one of ddim, plms, k_lms"),
    ("a:\n  path: x\n  sampler: 3\n", "model 'a': sampler is 3; expected one of ddim"),
    ("a:\n  path: x\n  sampler: dpmpp_2m\n  scheduler: simple\n",
     "model 'a': scheduler is 'simple'; expected one of model, uniform, karras, exponential, "
     "normal"),
    ("a:\n  path: x\n  sampler: ddim\n  schedule: karras\n",
     "model 'a': the karras schedule is not for sampler 'ddim'; expected"),
    ("a:\n  path: x\n  sampler: DPM++ 2M Karras\n  schedule: exponential\n",
     "model 'a': sampler 'DPM++ 2M Karras' and schedule 'exponential' disagree"),
    ("a:\n  path: x\n  schedule: karras\n", "model 'a': schedule is given without a sampler"),
    ("a:\n  path: x\n  sampler: euler\n  schedule: karras\n  scheduler: karras\n",
     "model 'a' has both schedule and scheduler"),
    ("a:\n  path: x\n  default: true\nb:\n  path: y\n  default: true\n",
     "several models are marked default"),
    ("a:\n  path: x\n  width: 0\n", "width is 0; expected a size in pixels"),
    ("a:\n  path: x\n  height: big\n", "height is 'big'"),
    ("a:\n  description: no path\n", "model 'a' has no path"),
    ("a:\n  path: x\n  colour: red\n", "unknown field(s) colour"),
    ("a:\n  path: x\n  default: yes please\n", "default is 'yes please'"),
    ("a:\n  path: x\n  cfg_scale: 101\n", "model 'a': cfg_scale is 101; expected a number "
                                            "in [0, 100]"),
    ("a:\n  path: x\n  cfg_scale: -0.5\n", "cfg_scale is -0.5; expected a number in [0, 100]"),
    ("a:\n  path: x\n  cfg_scale: high\n", "cfg_scale is 'high'; expected a number"),
    ("a:\n  path: x\n  cfg_scale: true\n", "cfg_scale is True; expected a number"),
    ("a:\n  path: x\n  cfg_scale: .nan\n", "cfg_scale is nan; expected a number"),
    ("a: [1, 2]\n", "expected a mapping with path"),
    ("- a\n- b\n", "expected a mapping of model names"),
    ("", "expected a mapping of model names"),
    ("a:\n  path: [unclosed\n", "is not valid YAML at line"),
])
def test_bad_registries_give_one_line(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ModelError) as caught:
        ModelRegistry.load(path)
    message = str(caught.value)
    assert fragment in message
    assert message.startswith(f"{path}") or "models file" in message
    assert "\n" not in message


def test_missing_registry_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist") as caught:
        ModelRegistry.load(tmp_path / "nope.yaml")
    assert str(tmp_path / "nope.yaml") in str(caught.value)
