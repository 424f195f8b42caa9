"""!fetch checks the LoRAs a fetched command names: by name, else by A1111's LoRA hash (the
image's ``Lora hashes``), and names the missing ones in one note."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin
from safetensors.numpy import save_file

from dreamline.models.hashing import HashCache
from dreamline.repl.fetch import fetch
from dreamline.repl.fetch_loras import LocalLoras, lora_hashes

SETTINGS = "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 64x64"


def lora_file(path: Path, seed: int) -> str:
    """A small kohya-style LoRA file; returns its A1111 hash, computed from the format."""
    rng = np.random.default_rng(seed)
    save_file({"lora_unet_x.lora_down.weight": rng.standard_normal((2, 4), dtype=np.float32)},
              str(path))
    data = path.read_bytes()
    return hashlib.sha256(data[8 + int.from_bytes(data[:8], "little"):]).hexdigest()[:12]


def a1111_png(path: Path, prompt: str, hashes: str) -> Path:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", f'{prompt}\n{SETTINGS}, Lora hashes: "{hashes}"')
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


def test_lora_hashes_field() -> None:
    assert lora_hashes("wet: 0123456789ab, a b: ABCDEF012345") == {
        "wet": "0123456789ab", "a b": "abcdef012345"}


def test_found_by_hash_renamed_missing_named(tmp_path: Path) -> None:
    folder = tmp_path / "loras"
    folder.mkdir()
    wet = lora_file(folder / "wet-v2.safetensors", 1)
    here = lora_file(folder / "here.safetensors", 2)
    png = a1111_png(tmp_path / "a.png", "a lake <lora:wet:0.8> <lora:here:1> <lora:gone:0.5>",
                    f"wet: {wet}, here: {here}, gone: 000000000000")
    fetched = fetch(png, loras=LocalLoras(folder, HashCache(tmp_path / "hashes.json")))
    assert fetched.command.startswith('"a lake <lora:wet-v2:0.8> <lora:here:1> <lora:gone:0.5>"')
    lora_notes = [note for note in fetched.notes if "LoRA" in note]
    assert lora_notes == [
        f"LoRA 'wet' is 'wet-v2' here (same A1111 hash {wet}); the command uses that name",
        f"LoRA file(s) not found in {folder}: gone; the command needs them there (or give a "
        "path)"]
    assert fetch(png).command == fetched.command.replace("wet-v2", "wet")  # no folder: as is


def test_a_local_file_with_another_hash_is_said(tmp_path: Path) -> None:
    folder = tmp_path / "loras"
    folder.mkdir()
    mine = lora_file(folder / "wet.safetensors", 3)
    png = a1111_png(tmp_path / "a.png", "a lake <lora:wet:1>", "wet: 0123456789ab")
    notes = fetch(png, loras=LocalLoras(folder)).notes
    assert notes == (f"LoRA 'wet': the local file {folder / 'wet.safetensors'} has A1111 hash "
                     f"{mine}, the image's was 0123456789ab; it may be another version",)


def test_no_lora_folder_names_them_all(tmp_path: Path) -> None:
    png = a1111_png(tmp_path / "a.png", "a lake <lora:wet:1>", "wet: 0123456789ab")
    assert fetch(png, loras=LocalLoras(None)).notes[-1] == (
        "LoRA file(s) not found (no LoRA folder is set): wet; the command needs them there "
        "(or give a path)")
