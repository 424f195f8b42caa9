"""Init image and mask loading: sizes, EXIF, transparency, masks, paste-back, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from dreamline.errors import ImageError
from dreamline.image_sizes import fit_size
from dreamline.images import (
    InitImage,
    load_init_image,
    mask_to_latent,
    paste_kept,
)

ROOT = Path(__file__).resolve().parent.parent
PICTURES = ROOT / "test-pictures"


def save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def solid(size: tuple[int, int], colour=(10, 120, 200), mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size, colour)


def rgba_with_hole(size=(64, 64), colour=(200, 40, 30), hole_alpha=0) -> Image.Image:
    """Opaque picture whose top-left 16x16 square is transparent over its own colour."""
    pixels = np.zeros((size[1], size[0], 4), np.uint8)
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = colour
    pixels[..., 3] = 255
    pixels[:16, :16, 3] = hole_alpha
    return Image.fromarray(pixels, "RGBA")


def load(path: Path, **options) -> InitImage:
    options.setdefault("fit_box", None)
    options.setdefault("multiple", 8)
    return load_init_image(path, **options)


# ------------------------------------------------------------------------------------ sizes

FIT_CASES = [
    # image, box, multiple, expected, change
    ((900, 600), (512, 512), 64, (512, 320), "scaled down"),  # landscape: 512x341 floored
    ((600, 900), (512, 512), 64, (320, 512), "scaled down"),  # portrait
    ((1024, 1024), (512, 512), 64, (512, 512), "scaled down"),  # square
    ((1536, 1024), (768, 512), 64, (768, 512), "scaled down"),  # same aspect as the box
    ((1536, 1024), (512, 768), 64, (512, 320), "scaled down"),  # landscape into a portrait box
    ((1000, 500), (2000, 300), 64, (576, 256), "scaled down"),  # height binds: 600x300
    ((256, 128), (512, 512), 64, (512, 256), "scaled up"),  # smaller than the box
    ((60, 40), (64, 64), 8, (64, 40), "scaled up"),  # 64x42 floored to 8
    ((512, 512), (512, 512), 64, (512, 512), "unchanged"),  # exactly the box
    ((640, 480), (512, 512), 8, (512, 384), "scaled down"),
]


@pytest.mark.parametrize("size, box, multiple, expected, change", FIT_CASES)
def test_fit_is_a_true_bounding_box(tmp_path, size, box, multiple, expected, change):
    path = save(solid(size), tmp_path / "in.png")
    result = load(path, fit_box=box, multiple=multiple)
    assert result.image.size == expected
    assert result.image.mode == "RGB"
    assert result.original_size == size
    fit_note = [note for note in result.notes if note.startswith("fit ")]
    assert fit_note == [
        f"fit {size[0]}x{size[1]} -> {expected[0]}x{expected[1]} (box {box[0]}x{box[1]}), {change}"
    ]


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 5000), st.integers(1, 5000), st.integers(1, 3000), st.integers(1, 3000),
    st.sampled_from([1, 8, 64]),
)
def test_fit_size_properties(width, height, box_w, box_h, multiple):
    fitted_w, fitted_h = fit_size((width, height), (box_w, box_h), multiple)
    assert fitted_w <= box_w and fitted_h <= box_h
    assert fitted_w % multiple == 0 and fitted_h % multiple == 0
    exact_w, exact_h = fit_size((width, height), (box_w, box_h), 1)
    assert exact_w == box_w or exact_h == box_h  # touches the box: largest possible
    # aspect kept to within one pixel of rounding on the free side
    assert abs(exact_w * height - exact_h * width) <= max(width, height)


def test_no_fit_floors_to_the_multiple_by_resizing(tmp_path):
    pixels = np.zeros((390, 517, 3), np.uint8)
    pixels[:, :, 0] = 200
    pixels[:, -3:] = (0, 255, 0)  # a green right edge: cropping would lose it
    path = save(Image.fromarray(pixels), tmp_path / "in.png")
    result = load(path, multiple=64)
    assert result.image.size == (512, 384)
    assert result.original_size == (517, 390)
    assert "size 517x390 floored to 512x384 (multiples of 64)" in result.notes
    right = np.asarray(result.image)[:, -1]
    assert (right[:, 1] > 200).all() and (right[:, 0] < 60).all()


def test_no_note_when_the_size_already_fits_the_multiple(tmp_path):
    path = save(solid((512, 512)), tmp_path / "in.png")
    result = load(path, multiple=64)
    assert result.image.size == (512, 512)
    assert result.notes == []
    assert result.mask is None


def test_size_warnings_small_and_large_with_thresholds(tmp_path):
    small = save(solid((256, 192)), tmp_path / "small.png")
    notes = load(small, multiple=64).notes
    assert any(n.startswith("warning:") and "works poorly below 512x512" in n
               and "--fit" in n for n in notes)
    # a small built-in model passes its own default size: then 64x64 is fine
    tiny = save(solid((64, 64)), tmp_path / "tiny.png")
    assert load(tiny, small_side=64, large_area=64 * 64).notes == []
    assert any("works poorly below 128x128" in n for n in load(tiny, small_side=128).notes)
    large = save(solid((768, 768)), tmp_path / "large.png")
    notes = load(large, multiple=64).notes
    assert any(n.startswith("warning:") and "larger than the model's default area" in n
               for n in notes)
    assert not any("larger" in n for n in load(large, multiple=64, large_area=768 * 768).notes)
    # one side at 512 is enough: the reference warned only when both were below
    assert not any("poorly" in n for n in load(save(solid((512, 256)), tmp_path / "w.png")).notes)


# ------------------------------------------------------------------------------- EXIF, RGB


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)  # stored: left half red, right half blue
    pixels[:, 20:] = (0, 0, 255)
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    path = save(image, tmp_path / "rotated.png", exif=exif)
    result = load(path, multiple=1)
    assert result.image.size == (20, 40)
    assert result.original_size == (20, 40)
    shown = np.asarray(result.image)
    assert (shown[:20] == (255, 0, 0)).all() and (shown[20:] == (0, 0, 255)).all()
    assert any("EXIF orientation 6" in n for n in result.notes)


def test_colour_under_transparency_is_kept(tmp_path):
    path = save(rgba_with_hole(colour=(10, 200, 30)), tmp_path / "hole.png")
    result = load(path)
    assert result.image.mode == "RGB"
    assert (np.asarray(result.image) == (10, 200, 30)).all()  # not composited onto black


def test_grayscale_16_bit_is_scaled_not_clipped(tmp_path):
    values = np.full((64, 64), 32896, np.uint16)  # 128 * 257
    values[:, 32:] = 65535
    path = save(Image.fromarray(values), tmp_path / "gray16.png")
    shown = np.asarray(load(path).image)
    assert (shown[:, :32] == 128).all() and (shown[:, 32:] == 255).all()


def test_animated_image_uses_first_frame(tmp_path):
    frames = [solid((64, 64), (255, 0, 0)), solid((64, 64), (0, 0, 255))]
    path = tmp_path / "anim.png"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    result = load(path)
    assert np.asarray(result.image)[0, 0].tolist() == [255, 0, 0]
    assert any("2 frames; using the first" in n for n in result.notes)


# ------------------------------------------------------------------------------------ masks


def test_mask_from_alpha_partial_alpha_is_repainted(tmp_path):
    pixels = np.asarray(rgba_with_hole()).copy()
    pixels[40:, 40:, 3] = 254  # barely transparent still repaints
    path = save(Image.fromarray(pixels, "RGBA"), tmp_path / "hole.png")
    result = load(path)
    assert result.mask is not None and result.mask.dtype == np.float32
    assert result.mask.shape == (64, 64)
    expected = np.ones((64, 64), np.float32)
    expected[:16, :16] = 0
    expected[40:, 40:] = 0
    assert np.array_equal(result.mask, expected)


def test_opaque_alpha_channel_is_no_mask(tmp_path):
    path = save(solid((64, 64), (1, 2, 3, 255), "RGBA"), tmp_path / "opaque.png")
    result = load(path)
    assert result.mask is None
    assert result.notes == ["warning: 64x64 is small: img2img works poorly below 512x512; "
                            "try --fit with -W/-H"]


def test_mask_from_palette_transparency(tmp_path):
    indices = np.zeros((64, 64), np.uint8)
    indices[:, 32:] = 1
    image = Image.fromarray(indices, "P")
    image.putpalette([9, 9, 9, 255, 0, 0] + [0] * 762)
    path = save(image, tmp_path / "palette.png", transparency=0)
    result = load(path)
    assert result.mask is not None
    assert (result.mask[:, :32] == 0).all() and (result.mask[:, 32:] == 1).all()
    assert np.asarray(result.image)[0, 0].tolist() == [9, 9, 9]  # the palette colour kept


def test_mask_from_png_truecolour_transparency_chunk(tmp_path):
    pixels = np.full((64, 64, 3), 50, np.uint8)
    pixels[:8] = (1, 2, 3)
    path = save(Image.fromarray(pixels), tmp_path / "trns.png", transparency=(1, 2, 3))
    result = load(path)
    assert result.mask is not None
    assert (result.mask[:8] == 0).all() and (result.mask[8:] == 1).all()


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_mask_file_gray_black_repaints_white_keeps(tmp_path, mode):
    gray = np.full((64, 64), 255, np.uint8)
    gray[:, :16] = 0
    gray[:, 16:24] = 100  # darker than mid-grey: repaint
    gray[:, 24:32] = 200  # lighter: keep
    mask_image = Image.fromarray(gray).convert(mode)
    mask_path = save(mask_image, tmp_path / "mask.png")
    init = save(solid((64, 64)), tmp_path / "in.png")
    result = load(init, mask_path=mask_path)
    assert result.mask is not None
    assert (result.mask[:, :24] == 0).all() and (result.mask[:, 24:] == 1).all()
    assert any("gray levels" in n for n in result.notes)


def test_mask_file_with_alpha_uses_alpha(tmp_path):
    mask_path = save(rgba_with_hole(colour=(0, 0, 0), hole_alpha=200), tmp_path / "mask.png")
    init = save(solid((64, 64)), tmp_path / "in.png")
    result = load(init, mask_path=mask_path)  # black everywhere: the gray would repaint all
    assert result.mask is not None
    assert (result.mask[:16, :16] == 0).all() and result.mask.sum() == 64 * 64 - 256
    assert any("transparency of" in n for n in result.notes)


def test_mask_file_replaces_the_images_own_transparency(tmp_path):
    init = save(rgba_with_hole(), tmp_path / "in.png")
    gray = np.full((64, 64), 255, np.uint8)
    gray[-8:] = 0
    mask_path = save(Image.fromarray(gray), tmp_path / "mask.png")
    result = load(init, mask_path=mask_path)
    assert (result.mask[-8:] == 0).all() and (result.mask[:-8] == 1).all()
    assert any("is used instead" in n for n in result.notes)


def test_invert_mask_swaps(tmp_path):
    path = save(rgba_with_hole(), tmp_path / "hole.png")
    plain = load(path).mask
    inverted = load(path, invert_mask=True).mask
    assert plain is not None and inverted is not None
    assert np.array_equal(inverted, 1 - plain)


def test_invert_mask_without_a_mask_warns(tmp_path):
    path = save(solid((64, 64)), tmp_path / "in.png")
    result = load(path, invert_mask=True)
    assert result.mask is None
    assert any(n.startswith("warning: --invert_mask ignored") for n in result.notes)


def test_mask_is_resized_with_the_image_under_fit(tmp_path):
    init = save(solid((256, 128)), tmp_path / "in.png")
    gray = np.full((64, 128), 255, np.uint8)  # same aspect, half the size
    gray[:, :32] = 0  # left quarter repainted
    mask_path = save(Image.fromarray(gray), tmp_path / "mask.png")
    result = load(init, fit_box=(512, 512), multiple=64, mask_path=mask_path)
    assert result.image.size == (512, 256)
    assert result.mask is not None and result.mask.shape == (256, 512)
    assert set(np.unique(result.mask).tolist()) <= {0.0, 1.0}
    assert (result.mask[:, :128] == 0).all() and (result.mask[:, 130:] == 1).all()
    assert not any(n.startswith("warning: mask") for n in result.notes)


def test_mask_resize_never_keeps_a_pixel_that_blends_the_hole(tmp_path):
    path = save(rgba_with_hole(size=(100, 100)), tmp_path / "hole.png")
    result = load(path, fit_box=(64, 64), multiple=8)
    assert result.mask is not None and result.mask.shape == (64, 64)
    # the hole is 16/100 of each side: 10.24 pixels; pixel 10 blends across its edge
    assert (result.mask[:11, :11] == 0).all()
    assert (result.mask[12:, :] == 1).all() and (result.mask[:, 12:] == 1).all()


def test_mask_of_another_aspect_is_stretched_with_a_warning(tmp_path):
    init = save(solid((64, 64)), tmp_path / "in.png")
    gray = np.full((32, 64), 255, np.uint8)
    gray[:16] = 0
    mask_path = save(Image.fromarray(gray), tmp_path / "mask.png")
    result = load(init, mask_path=mask_path)
    assert (result.mask[:31] == 0).all() and (result.mask[33:] == 1).all()
    assert any(n.startswith("warning: mask") and "stretched" in n for n in result.notes)


def test_mask_keeping_everything_is_dropped_with_a_note(tmp_path):
    init = save(solid((64, 64)), tmp_path / "in.png")
    white = save(solid((64, 64), 255, "L"), tmp_path / "white.png")
    result = load(init, mask_path=white)
    assert result.mask is None
    assert any("keeps every pixel: nothing to repaint; running plain img2img" in n
               and "--invert_mask" in n for n in result.notes)


def test_mask_repainting_everything_is_dropped_with_a_note(tmp_path):
    init = save(solid((64, 64)), tmp_path / "in.png")
    black = save(solid((64, 64), 0, "L"), tmp_path / "black.png")
    result = load(init, mask_path=black)
    assert result.mask is None
    assert any("repaints every pixel" in n and "plain img2img" in n for n in result.notes)
    # inverted white is the same thing
    white = save(solid((64, 64), 255, "L"), tmp_path / "white.png")
    assert load(init, mask_path=white, invert_mask=True).mask is None


@pytest.mark.parametrize("hidden, warned", [
    ([(0, 0, 0)], True),
    ([(255, 255, 255)], True),
    ([(0, 0, 0), (255, 255, 255)], True),
    ([(0, 0, 0), (1, 0, 0)], False),
    ([(40, 140, 45)], False),
])
def test_erased_colours_warning(tmp_path, hidden, warned):
    pixels = np.asarray(rgba_with_hole()).copy()
    for row in range(16):
        pixels[row, :16, :3] = hidden[row % len(hidden)]
    pixels[20, 20, 3] = 128  # partly transparent pixels are not judged
    path = save(Image.fromarray(pixels, "RGBA"), tmp_path / "hole.png")
    notes = load(path).notes
    assert any(n.startswith("warning: the colours under the transparent region") and
               "hole.png" in n for n in notes) is warned


# ------------------------------------------------------------------------ paste and latent


def test_paste_kept_leaves_every_kept_pixel_identical(tmp_path):
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (64, 64, 4), dtype=np.uint8)
    picture[..., 3] = 255
    picture[10:30, 20:50, 3] = 0
    init = load(save(Image.fromarray(picture, "RGBA"), tmp_path / "in.png"))
    generated = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    out = np.asarray(paste_kept(generated, init))
    kept = init.mask == 1
    assert np.array_equal(out[kept], picture[..., :3][kept])
    assert np.array_equal(out[~kept], np.asarray(generated)[~kept])


def test_paste_kept_without_mask_returns_the_result(tmp_path):
    init = load(save(solid((64, 64)), tmp_path / "in.png"))
    generated = solid((64, 64), (1, 2, 3))
    assert np.array_equal(np.asarray(paste_kept(generated, init)), np.asarray(generated))
    with pytest.raises(ValueError):
        paste_kept(solid((32, 64)), init)


def test_mask_to_latent_min_pools():
    mask = np.ones((16, 24), np.float32)
    mask[0, 0] = 0  # one repainted pixel repaints its whole latent cell
    mask[8:, 16:] = 0
    latent = mask_to_latent(mask, 8)
    assert latent.shape == (2, 3) and latent.dtype == np.float32
    assert latent.tolist() == [[0, 1, 1], [1, 1, 0]]
    with pytest.raises(ValueError):
        mask_to_latent(np.ones((12, 16), np.float32), 8)


# ----------------------------------------------------------------------------------- errors


def one_line_naming(error: pytest.ExceptionInfo, name: str) -> str:
    message = str(error.value)
    assert "\n" not in message
    assert f"'{name}'" in message
    return message


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.png"
    with pytest.raises(ImageError) as error:
        load(missing)
    assert "init image" in one_line_naming(error, str(missing))
    assert "no such file" in str(error.value)


def test_directory(tmp_path):
    with pytest.raises(ImageError) as error:
        load(tmp_path)
    assert "directory" in one_line_naming(error, str(tmp_path))


def test_not_an_image(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(ImageError) as error:
        load(text)
    message = one_line_naming(error, str(text))
    assert "not an image file (expected PNG, JPEG, WebP" in message


def test_truncated_image(tmp_path):
    good = save(Image.fromarray(np.random.default_rng(1).integers(
        0, 256, (64, 64, 3), dtype=np.uint8)), tmp_path / "good.png")
    broken = tmp_path / "broken.png"
    broken.write_bytes(good.read_bytes()[:400])
    with pytest.raises(ImageError) as error:
        load(broken)
    assert "cannot read init image" in one_line_naming(error, str(broken))


def test_unreadable_mask_names_the_mask(tmp_path):
    init = save(solid((64, 64)), tmp_path / "in.png")
    missing = tmp_path / "mask.png"
    with pytest.raises(ImageError) as error:
        load(init, mask_path=missing)
    assert one_line_naming(error, str(missing)).startswith("mask")
    assert "no such file" in str(error.value)


def test_too_small_without_fit(tmp_path):
    path = save(solid((40, 300)), tmp_path / "thin.png")
    with pytest.raises(ImageError) as error:
        load(path, multiple=64)
    message = one_line_naming(error, str(path))
    assert "40x300" in message and "64" in message


def test_too_small_after_fit(tmp_path):
    path = save(solid((2000, 50)), tmp_path / "strip.png")
    with pytest.raises(ImageError) as error:
        load(path, fit_box=(512, 512), multiple=64)
    message = one_line_naming(error, str(path))
    assert "2000x50" in message and "512x12" in message and "64" in message


# ------------------------------------------------------------------------- test pictures


def test_test_pictures_load_as_documented():
    tree = load(PICTURES / "tree-and-river-sketch.png", multiple=64)
    assert tree.image.size == (512, 512) and tree.mask is None
    fire = load(PICTURES / "fire-drawing.png", multiple=64)
    assert fire.image.size == (512, 512)
    big = load(PICTURES / "big-sketch.png", fit_box=(512, 512), multiple=64)
    assert big.original_size == (1536, 1024) and big.image.size == (512, 320)
    hole = load(PICTURES / "inpaint-hole.png", multiple=64)
    with_mask = load(PICTURES / "tree-and-river-sketch.png", multiple=64,
                     mask_path=PICTURES / "mask.png")
    assert hole.mask is not None and with_mask.mask is not None
    assert np.array_equal(hole.mask, with_mask.mask)
    assert 0.05 < float((hole.mask == 0).mean()) < 0.3
    assert not any("erased" in n for n in hole.notes)  # the crown's green is under the hole
    for name in ("tree-and-river-sketch-64.png", "fire-drawing-64.png"):
        small = load(PICTURES / name, multiple=8, small_side=64, large_area=64 * 64)
        assert small.image.size == (64, 64) and small.notes == []
    small_hole = load(PICTURES / "inpaint-hole-64.png", multiple=8)
    small_mask = load(PICTURES / "tree-and-river-sketch-64.png", multiple=8,
                      mask_path=PICTURES / "mask-64.png")
    assert small_hole.mask is not None and np.array_equal(small_hole.mask, small_mask.mask)


def test_test_pictures_are_what_the_script_draws(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "scripts" / "draw_test_pictures.py"), str(tmp_path)],
                   check=True, capture_output=True)
    for drawn in sorted(tmp_path.glob("*.png")):
        with Image.open(drawn) as fresh, Image.open(PICTURES / drawn.name) as committed:
            assert fresh.mode == committed.mode and fresh.size == committed.size, drawn.name
            assert fresh.tobytes() == committed.tobytes(), drawn.name


# ------------------------------------------------- limits that agree with the prompt line


def test_too_small_without_fit_suggests_fit(tmp_path):
    path = save(solid((40, 300)), tmp_path / "thin.png")
    with pytest.raises(ImageError) as error:
        load(path, multiple=64)
    assert "--fit" in one_line_naming(error, str(path))


def test_larger_than_the_prompt_line_accepts_is_refused_with_a_fit_hint(tmp_path):
    from dreamline.request import MAX_SIDE

    path = save(solid((9000, 64)), tmp_path / "wide.png")
    with pytest.raises(ImageError) as error:
        load(path, multiple=64)
    message = one_line_naming(error, str(path))
    assert "9000x64" in message and "8960x64" in message and str(MAX_SIDE) in message
    assert "--fit" in message
    assert load(path, fit_box=(4096, 512), multiple=8).image.size == (4096, 24)  # --fit runs


def test_the_largest_size_the_prompt_line_accepts_still_loads(tmp_path):
    from dreamline.request import MAX_SIDE

    path = save(solid((MAX_SIDE + 63, 64)), tmp_path / "edge.png")
    assert load(path, multiple=64).image.size == (MAX_SIDE, 64)


# --------------------------------------------------------------- devices, pipes, bad EXIF


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="needs /dev/null")
def test_dev_null_is_not_a_regular_file():
    with pytest.raises(ImageError) as error:
        load("/dev/null")
    assert "is a character device, not a regular file" in one_line_naming(error, "/dev/null")


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_without_opening_it(tmp_path):
    import os

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageError) as error:
        load(fifo)  # opening a FIFO would block here forever
    assert "is a FIFO (named pipe), not a regular file" in one_line_naming(error, str(fifo))


def corrupt_exif_jpeg(path: Path) -> Path:
    """A JPEG whose EXIF directory claims more entries than it holds (orientation 6 first)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    save(solid((16, 8)), path, format="JPEG", exif=exif.tobytes())
    data = bytearray(path.read_bytes())
    tiff = data.index(b"Exif\x00\x00") + 6
    assert data[tiff:tiff + 2] == b"MM"
    data[tiff + 8:tiff + 10] = b"\x00\x40"  # 64 entries; there is one
    path.write_bytes(bytes(data))
    return path


def test_corrupt_exif_gives_one_note_and_no_library_warnings(tmp_path):
    import warnings

    path = corrupt_exif_jpeg(tmp_path / "phone.jpg")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = load(path)
    assert [str(w.message) for w in caught] == []
    damaged = [n for n in result.notes if "damaged" in n]
    assert len(damaged) == 1 and f"'{path}'" in damaged[0]
    assert "site-packages" not in damaged[0] and "\n" not in damaged[0]
    assert result.image.size == (8, 16)  # still turned upright


def test_a_decompression_bomb_names_its_size_and_the_limit(tmp_path: Path) -> None:
    from PIL import Image as PILImage

    from dreamline.image_files import open_image

    huge = tmp_path / "huge.png"
    PILImage.new("1", (20000, 20000)).save(huge)
    with pytest.raises(ImageError, match=r"too large to load safely \(400,000,000 pixels\); "
                                         r"expected at most [\d,]+"):
        open_image(huge, "init image")
