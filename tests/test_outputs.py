"""Output files: prefixes, atomic no-overwrite writes, grids, strips, intermediates and logs."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from dreamline import outputs
from dreamline.errors import DreamlineError
from dreamline.outputs import (
    OutputDir, OutputError, append_logs, format_output_lines, grid_shape, image_name,
    intermediates_dir, make_grid, make_strip, strip_zoom, output_entries, save_grid, save_image,
)

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255),
           (128, 128, 128)]


def touch(directory: Path, *names: str) -> None:
    for name in names:
        (directory / name).write_bytes(b"")


def visible(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


# ---- naming and prefixes ------------------------------------------------------------------------

def test_image_names() -> None:
    assert image_name(7, 42) == "000007.42.png"
    assert image_name(123456, 0) == "123456.0.png"
    assert image_name(7, 42, "grid") == "000007.42.grid.png"
    assert image_name(1_000_000, 1) == "1000000.1.png"


def test_first_prefix_in_a_missing_directory_creates_it(tmp_path: Path) -> None:
    outdir = tmp_path / "a" / "b" / "img-samples"
    assert OutputDir(outdir).reserve_prefix() == 1
    assert outdir.is_dir()


def test_prefix_is_one_more_than_the_largest_even_with_gaps(tmp_path: Path) -> None:
    touch(tmp_path, "000001.5.png", "000003.9.png", "000010.1.png", "000010.2.png")
    assert OutputDir(tmp_path).reserve_prefix() == 11


def test_files_not_starting_with_six_digits_and_a_dot_are_ignored(tmp_path: Path) -> None:
    touch(tmp_path, "000004.1.png", "12345.1.png", "099999", "x000050.1.png", "abc.png",
          "000060-1.png", "invoke_log.txt")
    assert OutputDir(tmp_path).reserve_prefix() == 5


def test_any_six_digit_dot_name_counts_and_seven_digits_continue(tmp_path: Path) -> None:
    touch(tmp_path, "000019.steps.png")
    assert OutputDir(tmp_path).reserve_prefix() == 20
    touch(tmp_path, "999999.1.png")
    assert OutputDir(tmp_path).reserve_prefix() == 1_000_000
    touch(tmp_path, "1000000.1.png")
    assert OutputDir(tmp_path).reserve_prefix() == 1_000_001


def test_a_reservation_holds_before_its_images_exist(tmp_path: Path) -> None:
    directory = OutputDir(tmp_path)
    assert [directory.reserve_prefix() for _ in range(3)] == [1, 2, 3]
    assert visible(tmp_path) == []


def test_a_damaged_counter_file_falls_back_to_the_scan(tmp_path: Path) -> None:
    touch(tmp_path, "000008.1.png")
    (tmp_path / outputs.COUNTER_FILE).write_text("garbage\x00")
    assert OutputDir(tmp_path).reserve_prefix() == 9


def test_outdir_that_is_a_file_is_a_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="not-a-dir.*is a file; expected a directory"):
        OutputDir(blocker).reserve_prefix()


def test_one_command_shares_its_prefix_and_the_grid_does_not_collide(tmp_path: Path) -> None:
    directory = OutputDir(tmp_path)
    touch(tmp_path, "000004.77.png")
    prefix = directory.reserve_prefix()
    images = [Image.new("RGB", (8, 8), colour) for colour in COLOURS[:3]]
    paths = [save_image(directory, prefix, seed, image, f"cmd {seed}")
             for seed, image in zip((42, 43, 44), images, strict=False)]
    grid = save_grid(tmp_path, prefix, 42, make_grid(images), "grid cmd")
    assert [p.name for p in paths] == ["000005.42.png", "000005.43.png", "000005.44.png"]
    assert grid.name == "000005.42.grid.png"
    assert Image.open(paths[0]).size == (8, 8) and Image.open(grid).size == (24, 8)
    assert directory.reserve_prefix() == 6


WORKER = r"""
import sys, time
from pathlib import Path
from PIL import Image
from dreamline.outputs import OutputDir, save_image
outdir, go, rounds = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
while not go.exists():
    time.sleep(0.001)
directory = OutputDir(outdir)
image = Image.new("RGB", (4, 4))
for seed in range(rounds):
    prefix = directory.reserve_prefix()
    save_image(directory, prefix, seed, image, "worker")   # same seeds: same prefix would clash
    print(prefix, flush=True)
"""


def test_concurrent_processes_never_take_the_same_prefix(tmp_path: Path) -> None:
    outdir, go = tmp_path / "out", tmp_path / "go"
    rounds, workers = 40, 3
    processes = [subprocess.Popen([sys.executable, "-c", WORKER, str(outdir), str(go),
                                   str(rounds)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(workers)]
    time.sleep(0.5)  # let every interpreter start and wait at the line
    go.write_text("go")
    results = [process.communicate(timeout=120) for process in processes]
    for process, (_, stderr) in zip(processes, results, strict=False):
        assert process.returncode == 0, stderr
    prefixes = [int(line) for stdout, _ in results for line in stdout.split()]
    assert sorted(prefixes) == list(range(1, rounds * workers + 1))
    assert len(visible(outdir)) == rounds * workers


# ---- atomic writes ------------------------------------------------------------------------------

def test_a_save_that_fails_midway_leaves_no_file(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def half_save(self: Image.Image, fp, *args, **kwargs) -> None:  # noqa: ANN001
        fp.write(b"\x89PNG\r\n\x1a\n half an image")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", half_save)
    with pytest.raises(OutputError, match=r"000001\.42\.png.*No space left on device"):
        save_image(tmp_path, 1, 42, Image.new("RGB", (8, 8)), "cmd")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_bug_during_save_still_cleans_up_and_propagates(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_save(self: Image.Image, fp, *args, **kwargs) -> None:  # noqa: ANN001
        fp.write(b"\x89PNG partial")
        raise RuntimeError("encoder bug")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(RuntimeError, match="encoder bug"):
        save_image(tmp_path, 1, 42, Image.new("RGB", (8, 8)), "cmd")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_image_is_never_overwritten(tmp_path: Path) -> None:
    first = save_image(tmp_path, 3, 42, Image.new("RGB", (8, 8), "red"), "first")
    before = first.read_bytes()
    with pytest.raises(OutputError, match=r"000003\.42\.png.*already exists"):
        save_image(tmp_path, 3, 42, Image.new("RGB", (8, 8), "blue"), "second")
    assert first.read_bytes() == before
    assert visible(tmp_path) == ["000003.42.png"]


def test_a_name_taken_between_check_and_publish_is_not_replaced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original_save = Image.Image.save
    target = tmp_path / "000001.5.png"

    def racing_save(self: Image.Image, fp, *args, **kwargs) -> None:  # noqa: ANN001
        target.write_bytes(b"someone else's")  # another writer wins the name meanwhile
        original_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", racing_save)
    with pytest.raises(OutputError, match="already exists"):
        save_image(tmp_path, 1, 5, Image.new("RGB", (8, 8)), "cmd")
    assert target.read_bytes() == b"someone else's"
    assert visible(tmp_path) == ["000001.5.png"] and len(list(tmp_path.iterdir())) == 1


def test_output_errors_are_dreamline_errors() -> None:
    assert issubclass(OutputError, DreamlineError)


# ---- grids and strips ---------------------------------------------------------------------------

@pytest.mark.parametrize("count, shape", [(1, (1, 1)), (2, (1, 2)), (3, (1, 3)), (4, (2, 2)),
                                          (5, (2, 3)), (6, (2, 3)), (7, (2, 4)), (9, (3, 3)),
                                          (10, (3, 4))])
def test_grid_shape(count: int, shape: tuple[int, int]) -> None:
    assert grid_shape(count) == shape


@pytest.mark.parametrize("count", range(1, 8))
def test_grid_places_images_in_order_row_by_row(count: int) -> None:
    width, height = 6, 4
    images = [Image.new("RGB", (width, height), COLOURS[i]) for i in range(count)]
    grid = make_grid(images)
    rows, columns = grid_shape(count)
    assert grid.size == (width * columns, height * rows)
    for cell in range(rows * columns):
        row, column = divmod(cell, columns)
        centre = (column * width + width // 2, row * height + height // 2)
        expected = COLOURS[cell] if cell < count else (0, 0, 0)
        assert grid.getpixel(centre) == expected, (count, cell)


def test_grid_pads_images_of_different_sizes() -> None:
    grid = make_grid([Image.new("RGB", (10, 4), "red"), Image.new("RGB", (6, 8), "blue")])
    assert grid.size == (20, 8)
    assert grid.getpixel((5, 6)) == (0, 0, 0)        # below the short first image
    assert grid.getpixel((12, 6)) == (0, 0, 255)
    assert grid.getpixel((18, 2)) == (0, 0, 0)       # right of the narrow second image


def test_grid_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError):
        make_grid([])


def test_strip_puts_steps_side_by_side_with_optional_labels() -> None:
    images = [Image.new("RGB", (128, 128), colour) for colour in COLOURS[:4]]
    plain = make_strip(images)
    assert plain.size == (512, 128)
    assert [plain.getpixel((128 * i + 40, 40)) for i in range(4)] == COLOURS[:4]
    labelled = make_strip(images, ["1", "2", "a label far too long to fit under one cell", "4"])
    assert labelled.width == plain.width and labelled.height > plain.height  # a band below
    assert labelled.crop((0, 0, 512, 128)).tobytes() == plain.tobytes()  # pictures uncovered
    band = labelled.crop((0, 128, 512, labelled.height))
    assert len(band.getcolors(maxcolors=10_000)) > 1  # something is written there
    with pytest.raises(ValueError):
        make_strip(images, ["only one"])


def test_strip_blows_small_cells_up() -> None:
    images = [Image.new("RGB", (32, 32), colour) for colour in COLOURS[:3]]
    zoom = strip_zoom(32)
    assert zoom * 32 >= 96 and (zoom - 1) * 32 < 96
    strip = make_strip(images)
    assert strip.size == (3 * 32 * zoom, 32 * zoom)
    assert strip.getpixel((2 * 32 * zoom + 1, 32 * zoom - 1)) == COLOURS[2]


def test_intermediates_dir_is_created_per_image(tmp_path: Path) -> None:
    directory = intermediates_dir(tmp_path, 12, 1592514025)
    assert directory == tmp_path / "intermediates" / "000012.1592514025"
    assert directory.is_dir()
    saved = outputs.save_step(directory, 3, Image.new("RGB", (8, 8)))
    assert saved.name == "step-0003.png" and saved.is_file()


# ---- printed lines and logs ---------------------------------------------------------------------

def test_output_lines_for_one_file() -> None:
    lines = format_output_lines(5, [("out/000005.42.png", '"a cat" -s 50 -S 42')])
    assert lines == ["Outputs:", '[5] out/000005.42.png: "a cat" -s 50 -S 42']


def test_output_lines_for_several_files() -> None:
    lines = format_output_lines(7, [("o/000007.1.png", "c1"), ("o/000007.2.png", "c2"),
                                    ("o/000007.1.grid.png", "c3")])
    assert lines == ["Outputs:", "[7.1] o/000007.1.png: c1", "[7.2] o/000007.2.png: c2",
                     "[7.3] o/000007.1.grid.png: c3"]
    assert format_output_lines(7, []) == []


def test_logs_are_appended_in_both_formats(tmp_path: Path) -> None:
    first = output_entries(1, [(tmp_path / "000001.42.png", '"a cat" -S 42')])
    second = output_entries(2, [(tmp_path / "000002.7.png", '"b" -S 7'),
                                (tmp_path / "000002.8.png", '"b" -S 8')])
    append_logs(tmp_path, first)
    append_logs(tmp_path, second)
    assert (tmp_path / "invoke_log.txt").read_text(encoding="utf-8") == (
        f'[1] {tmp_path}/000001.42.png: "a cat" -S 42\n'
        f'[2.1] {tmp_path}/000002.7.png: "b" -S 7\n'
        f'[2.2] {tmp_path}/000002.8.png: "b" -S 8\n'
    )
    assert (tmp_path / "invoke_log.md").read_text(encoding="utf-8") == (
        '## 000001.42.png\n![](000001.42.png)\n```\n"a cat" -S 42\n```\n\n'
        '## 000002.7.png\n![](000002.7.png)\n```\n"b" -S 7\n```\n\n'
        '## 000002.8.png\n![](000002.8.png)\n```\n"b" -S 8\n```\n\n'
    )


def test_log_lines_match_the_printed_lines(tmp_path: Path) -> None:
    pairs = [("x/000003.1.png", "c1"), ("x/000003.2.png", "c2")]
    append_logs(tmp_path, output_entries(3, pairs))
    logged = (tmp_path / "invoke_log.txt").read_text(encoding="utf-8").splitlines()
    assert logged == format_output_lines(3, pairs)[1:]


def test_logs_keep_unicode_commands(tmp_path: Path) -> None:
    append_logs(tmp_path, output_entries(1, [(tmp_path / "000001.1.png", '"café ☕" -S 1')]))
    assert "café ☕" in (tmp_path / "invoke_log.txt").read_text(encoding="utf-8")
