"""The README's example lines work as written on a fresh clone with the built-in demo model.

The lines are extracted from README.md itself (every indented ``invoke>`` line), run through the
real CLI (``--from_file``, the demo model, the test pictures), and must all succeed quickly and
draw what they ask for; the README's piping file must exist.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dreamline.cli import main

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
sys.path.insert(0, str(REPO / "scripts" / "demo_model"))

import data as demo_data  # noqa: E402  (scripts/demo_model/data.py: Lab thumbnails)

LINE = re.compile(r"^    invoke> (.+)$", re.MULTILINE)


def readme_lines() -> list[str]:
    return LINE.findall(README.read_text())


def test_the_readme_has_example_lines_and_its_piping_file_exists() -> None:
    lines = readme_lines()
    assert len(lines) >= 10
    for path in re.findall(r"cat (\S+) \| \.venv/bin/dreamline", README.read_text()):
        assert (REPO / path).is_file(), path
    for path in re.findall(r"-I (\S+)", "\n".join(lines)):
        assert (REPO / path).is_file(), path
    text = README.read_text()
    for path in re.findall(r"dreamline --from_file (\S+)", text):
        assert (REPO / path).is_file() or path == "style.txt", path  # style.txt: made above it
    # a new user's finding: the --ray example's file held lines --ray refuses
    for path in re.findall(r"dreamline --from_file (\S+) --ray", text):
        assert "--save_intermediates" not in (REPO / path).read_text(), path


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, int]:
    """Every README line run once through the CLI from the repository root."""
    out = tmp_path_factory.mktemp("readme")
    script = out / "lines.txt"
    script.write_text("\n".join(readme_lines()) + "\n")
    capture = out / "said.txt"
    import contextlib
    import io
    import os

    said = io.StringIO()
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            status = main(["--from_file", str(script), "-o", str(out / "img")])
    finally:
        os.chdir(cwd)
    capture.write_text(said.getvalue())
    return out / "img", said.getvalue(), status


def test_every_readme_line_runs(ran: tuple[Path, str, int]) -> None:
    outdir, said, status = ran
    assert status == 0, said[-2000:]
    assert "error" not in said.lower()
    # each line wrote its images: one numbered prefix per line
    prefixes = {path.name.split(".")[0] for path in outdir.glob("*.png")}
    assert len(prefixes) == len(readme_lines())


def test_the_first_example_is_fitted_into_the_demo_models_size(ran: tuple[Path, str, int]
                                                               ) -> None:
    outdir, said, _ = ran
    assert "fitting it into 32x32" in said
    first = sorted(outdir.glob("000001.*.png"))[0]
    assert Image.open(first).size == (32, 32)


def test_the_txt2img_example_draws_what_it_asks_for(ran: tuple[Path, str, int]) -> None:
    """'red apple -s 30 -S 42': the caption's own glyph is among the 10 nearest of the demo
    model's 1,271 reference glyphs (Lab distance, as in its model card): chance 0.8%, below the
    2.5% of the 5-of-200 this asked when the model knew 200 glyphs."""
    outdir, _, _ = ran
    lines = readme_lines()
    number = next(i for i, line in enumerate(lines, 1) if line.startswith("red apple -s"))
    image = Image.open(sorted(outdir.glob(f"{number:06d}.*.png"))[0])
    with np.load(REPO / "src" / "dreamline" / "data" / "demo" / "reference.npz") as ref:
        names = [str(name) for name in ref["names"]]
        thumbs = np.stack([demo_data.lab_thumbnail(glyph) for glyph in ref["canonical"]])
    distances = demo_data.lab_distances(demo_data.lab_thumbnail(image), thumbs)
    nearest = [names[i] for i in np.argsort(distances)[:10]]
    assert "red apple" in nearest, nearest
