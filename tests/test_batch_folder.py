"""--each_image DIR (issue 12, item 6): one prompt line over a folder of images, in name order,
each output named after its input; the real CLI and a tiny model, in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from dreamline.batch.folder import each_image, list_images
from dreamline.batch.manifest import MANIFEST_NAME, read_records
from dreamline.cli import main
from dreamline.errors import DreamlineError
from dreamline.repl.fetch import read_request
from dreamline.repl.lines import text_lines


def frames(folder: Path, names: list[str]) -> Path:
    folder.mkdir()
    for index, name in enumerate(names):
        Image.new("RGB", (64, 64), (index * 60, 90, 200 - index * 60)).save(folder / name)
    return folder


def test_images_come_in_natural_name_order(tmp_path: Path) -> None:
    folder = frames(tmp_path / "f", ["frame10.png", "frame2.jpg", "Frame1.PNG"])
    (folder / "notes.txt").write_text("not an image")
    assert [path.name for path in list_images(folder)] == ["Frame1.PNG", "frame2.jpg",
                                                           "frame10.png"]


@pytest.mark.parametrize("make, message", [
    (lambda p: p, "no images in it"),
    (lambda p: p / "missing", "not a folder"),
])
def test_a_folder_without_images_is_one_line(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DreamlineError, match=message):
        list_images(make(tmp_path))


def test_lines_expand_per_image_and_commands_pass_once(tmp_path: Path) -> None:
    images = [tmp_path / "a b.png", tmp_path / "c.png"]
    out = list(each_image(text_lines(["!switch x", "fox -s 2", "# note", "cat -I x.png"]),
                          images))
    assert [(item.number, item.text) for item in out[:3]] == [
        (1, "!switch x"), (2, f'fox -s 2 -I "{tmp_path}/a b.png"'),
        (2, f"fox -s 2 -I {tmp_path}/c.png")]
    assert out[4].text is None and "has its own -I" in (out[4].problem or "")


def test_one_line_over_a_folder_names_outputs_after_inputs(
        model_files, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    folder = frames(tmp_path / "frames", ["frame2.png", "frame10.png", "frame1.png"])
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a fox -s 2 -S 3 -f 0.5\n")
    outdir = tmp_path / "out"
    status = main(["-o", str(outdir), "-c", str(model_files.registry_yaml),
                   "--from_file", str(prompts), "--each_image", str(folder)])
    assert status == 0, capsys.readouterr().err
    written = sorted(path.name for path in outdir.glob("*.png"))
    assert written == ["000001.3.frame1.png", "000002.3.frame2.png", "000003.3.frame10.png"]
    for name, source in zip(written, ["frame1.png", "frame2.png", "frame10.png"], strict=True):
        assert Path(read_request(outdir / name).init_img or "").name == source
    records = read_records(outdir / MANIFEST_NAME)
    assert [record["line"] for record in records] == [1, 1, 1]
    # resuming the folder run skips all three
    status = main(["-o", str(outdir), "-c", str(model_files.registry_yaml),
                   "--from_file", str(prompts), "--each_image", str(folder), "--resume"])
    assert status == 0
    assert len(list(outdir.glob("*.png"))) == 3


def test_each_image_without_from_file_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-o", str(tmp_path), "--each_image", str(tmp_path)]) == 2
    assert "--each_image: needs --from_file FILE" in capsys.readouterr().err
