"""Textual-inversion embeddings (issue 10, section 2): tiny embeddings built in code for the tiny
text encoder (64 wide), saved in A1111's and diffusers' formats, loaded offline."""

from __future__ import annotations

import copy
import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from core_fixtures import tiny_model
from safetensors.torch import save_file

from dreamline.core import Generator
from dreamline.core.conditioning import TextEncoder
from dreamline.errors import DreamlineError
from dreamline.models.embeddings import EmbeddingError, EmbeddingSet, load_embedding
from dreamline.request import Request

WIDTH = 64


def vectors(count: int, seed: int, width: int = WIDTH) -> torch.Tensor:
    return torch.randn((count, width), generator=torch.Generator().manual_seed(seed))


def a1111_pt(path: Path, rows: torch.Tensor, checkpoint: str = "tiny-model") -> Path:
    torch.save({"string_to_token": {"*": 265},
                "string_to_param": {"*": torch.nn.Parameter(rows)},
                "name": path.stem, "step": 500, "sd_checkpoint": "0123abcd",
                "sd_checkpoint_name": checkpoint}, path)
    return path


def a1111_safetensors(path: Path, rows: torch.Tensor) -> Path:
    save_file({"emb_params": rows.contiguous()}, str(path))
    return path


def diffusers_bin(path: Path, token: str, row: torch.Tensor) -> Path:
    torch.save({token: row}, path)
    return path


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "embeddings"
    folder.mkdir()
    concept = tmp_path / "concept"
    concept.mkdir()
    return {
        "folder": folder,
        "toy": a1111_pt(folder / "toy.pt", vectors(1, 1)),
        "duo": a1111_safetensors(folder / "duo-style.safetensors", vectors(2, 2)),
        "learned": diffusers_bin(concept / "learned_embeds.bin", "<cat-toy>", vectors(1, 3)[0]),
        "wide": a1111_pt(tmp_path / "wide.pt", vectors(1, 4, width=768), checkpoint=""),
    }


def encoder(embeddings: EmbeddingSet | None, lines: list[str] | None = None) -> TextEncoder:
    model = tiny_model()
    report = lines.append if lines is not None else (lambda _line: None)
    return TextEncoder(model.tokenizer, model.text_encoder, model.device, model.dtype, report,
                       embeddings=embeddings)


def test_every_format_loads(files: dict[str, Path]) -> None:
    toy, duo, learned = (load_embedding(files[key]) for key in ("toy", "duo", "learned"))
    assert (toy.name, toy.vectors.shape, toy.trained_for) == ("toy", (1, WIDTH), "tiny-model")
    assert (duo.name, duo.vectors.shape) == ("duo-style", (2, WIDTH))
    assert (learned.name, learned.vectors.shape) == ("cat-toy", (1, WIDTH))
    assert torch.equal(duo.vectors, vectors(2, 2))
    assert toy.short_hash == hashlib.sha256(files["toy"].read_bytes()).hexdigest()[:12]
    found = EmbeddingSet.load([files["folder"], files["learned"]])
    assert found.names == ("cat-toy", "duo-style", "toy")
    assert len(found.describe()) == 3


def test_an_embedding_changes_the_conditioning_and_its_absence_nothing(
        files: dict[str, Path]) -> None:
    plain = encoder(None)
    with_set = encoder(EmbeddingSet.load([files["folder"], files["learned"]]))
    for prompt in ("a cat on a mat", "a (cat)1.3 on a mat", "toys and styles"):
        assert torch.equal(with_set.encode(prompt), plain.encode(prompt))
    used = with_set.conditioning("a <toy> on a mat")
    assert used.embeddings == ("toy",)
    assert not torch.equal(used.cond, plain.encode("a <toy> on a mat"))
    assert not torch.equal(used.cond, plain.encode("a on a mat"))
    # bare name and <name> are the same word; weighting and BREAK work around it
    assert torch.equal(with_set.encode("a toy on a mat"), used.cond)
    assert torch.equal(with_set.encode("a Toy on a mat"), used.cond)
    assert torch.equal(with_set.encode("a <TOY> on a mat"), used.cond)
    assert not torch.equal(with_set.encode("a (toy)1.4 on a mat"), used.cond)
    assert with_set.encode("a toy BREAK cat-toy").shape == (1, 154, WIDTH)
    # and in the negative prompt
    negative = with_set.conditioning("a cat [duo-style]")
    assert negative.embeddings == ("duo-style",)
    assert torch.equal(negative.cond, plain.encode("a cat"))
    assert not torch.equal(negative.uncond, plain.encode("duo-style"))


def test_same_tensors_as_diffusers_token_adding(files: dict[str, Path]) -> None:
    """What diffusers' load_textual_inversion does (add tokens, resize the text encoder), done
    on copies, gives the very same conditioning."""
    model = tiny_model()
    rows = vectors(2, 2)
    tokenizer = copy.deepcopy(model.tokenizer)
    text_encoder = copy.deepcopy(model.text_encoder)
    tokenizer.add_tokens(["<duo>", "<duo>_1"])
    text_encoder.resize_token_embeddings(len(tokenizer))
    with torch.no_grad():
        text_encoder.get_input_embeddings().weight[-2:] = rows
    ids = tokenizer("a <duo> <duo>_1 on a mat", padding="max_length", max_length=77,
                    return_tensors="pt").input_ids
    with torch.inference_mode():
        expected = text_encoder(ids)[0]
    ours = encoder(EmbeddingSet.load([files["duo"]])).encode("a <duo-style> on a mat")
    assert torch.equal(ours, expected)


def test_the_cached_model_is_left_as_it_was(files: dict[str, Path]) -> None:
    model = tiny_model()
    layer = model.text_encoder.get_input_embeddings()
    before = (len(model.tokenizer), layer.weight.shape, len(layer._forward_hooks),
              len(layer._forward_pre_hooks))
    encoder(EmbeddingSet.load([files["folder"]])).conditioning("a toy [duo-style]")
    assert (len(model.tokenizer), layer.weight.shape, len(layer._forward_hooks),
            len(layer._forward_pre_hooks)) == before


def test_pixels_without_the_embedding_are_unchanged(files: dict[str, Path]) -> None:
    model = tiny_model()

    def pixels(gen: Generator, prompt: str) -> np.ndarray:
        request = Request(prompt=prompt, steps=2, seed=9, width=64, height=64)
        return np.asarray(gen.generate(request)[0].image)

    plain = Generator(model)
    with_set = Generator(model, embeddings=EmbeddingSet.load([files["folder"]]))
    before = pixels(plain, "a cat on a mat")
    used = with_set.generate(Request(prompt="a toy on a mat", steps=2, seed=9, width=64,
                                     height=64))[0]
    assert not np.array_equal(np.asarray(used.image), pixels(plain, "a toy on a mat"))
    assert used.info.embeddings == (("toy", load_embedding(files["toy"]).short_hash),)
    assert np.array_equal(pixels(with_set, "a cat on a mat"), before)
    assert np.array_equal(pixels(plain, "a cat on a mat"), before)
    assert with_set.generate(Request(prompt="a cat", steps=1, seed=1, width=64,
                                     height=64))[0].info.embeddings == ()


def test_tokens_are_logged_by_name(files: dict[str, Path]) -> None:
    lines: list[str] = []
    encoder(EmbeddingSet.load([files["duo"]]), lines).conditioning("a duo-style cat",
                                                                   log_tokens=True)
    assert lines == ["prompt tokens (4): a</w> <duo-style> <duo-style>#1 cat</w>"]


def test_width_mismatch_is_refused_naming_the_model(files: dict[str, Path]) -> None:
    wide = EmbeddingSet.load([files["wide"]])
    text = encoder(wide)
    assert torch.equal(text.encode("a cat"), encoder(None).encode("a cat"))  # unused: fine
    with pytest.raises(EmbeddingError, match=r"<wide> \(wide.pt\) is 768 wide, made for SD 1\.x;"
                       r" this model's text encoder is 64 wide") as info:
        text.conditioning("a wide cat")
    assert "\n" not in str(info.value) and isinstance(info.value, DreamlineError)


def test_an_embedding_of_another_width_beside_it_does_not_block_the_right_one(
        files: dict[str, Path]) -> None:
    """A new user's finding: a 768-wide SD 1.x embedding loaded beside a 64-wide one made every
    use of the 64-wide one an internal error (the rows of both went into one tensor)."""
    both = encoder(EmbeddingSet.load([files["toy"], files["wide"]]))
    alone = encoder(EmbeddingSet.load([files["toy"]]))
    for text in ("a toy on a mat", "a <toy> on a mat"):
        assert torch.equal(both.conditioning(text).cond, alone.conditioning(text).cond)
    with pytest.raises(EmbeddingError, match=r"<wide> \(wide.pt\) is 768 wide"):
        both.conditioning("a toy and a wide cat")  # naming the other one is still refused


def test_bad_files_are_refused_in_one_line(tmp_path: Path, files: dict[str, Path]) -> None:
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as handle:
        pickle.dump({"string_to_param": {"*": Payload()}}, handle)
    notes = tmp_path / "notes.pt"
    notes.write_text("not a tensor file")
    wrong = tmp_path / "wrong.safetensors"
    save_file({"a": torch.zeros(2), "b": torch.zeros(2)}, str(wrong))
    renamed = tmp_path / "renamed.pt"  # a safetensors embedding under a torch name still loads
    renamed.write_bytes(files["duo"].read_bytes())
    assert EmbeddingSet.load([renamed]).names == ("renamed",)
    for path, message in ((evil, "refused"),
                          (notes, r"cannot read it as an embedding \(not a torch file: it starts "
                                  r"with neither a zip nor a pickle header"),
                          (wrong, "not a textual-inversion embedding"),
                          (tmp_path / "missing.pt", "neither an embedding file nor a folder")):
        with pytest.raises(EmbeddingError, match=message) as info:
            EmbeddingSet.load([path])
        assert "\n" not in str(info.value)
    # inside a folder a bad file is skipped with a line; the rest still load
    (files["folder"] / "broken.pt").write_text("junk")
    lines: list[str] = []
    found = EmbeddingSet.load([files["folder"]], report=lines.append)
    assert found.names == ("duo-style", "toy") and len(lines) == 1 and "broken.pt" in lines[0]


def test_two_files_with_one_name_are_refused(tmp_path: Path, files: dict[str, Path]) -> None:
    other = a1111_safetensors(tmp_path / "Toy.safetensors", vectors(1, 7))
    with pytest.raises(EmbeddingError, match="'Toy' is already taken by .*toy.pt"):
        EmbeddingSet.load([files["toy"], other])


def test_the_folder_beside_the_models_file_and_embedding_path(tmp_path: Path,
                                                              files: dict[str, Path]) -> None:
    from dreamline.models.embeddings import embedding_folder, session_embeddings

    models_file = tmp_path / "configs" / "models.yaml"
    assert embedding_folder(models_file) == tmp_path / "configs" / "embeddings"
    lines: list[str] = []
    assert len(session_embeddings([], models_file, report=lines.append)) == 0  # no folder yet
    embedding_folder(models_file).mkdir(parents=True)
    a1111_pt(embedding_folder(models_file) / "beside.pt", vectors(1, 8))
    found = session_embeddings([files["learned"]], models_file, report=lines.append)
    assert found.names == ("beside", "cat-toy") and lines == []


def test_a1111_parameters_name_the_embeddings_used(files: dict[str, Path]) -> None:
    from dreamline.pngmeta.a1111 import a1111_parameters

    gen = Generator(tiny_model(), embeddings=EmbeddingSet.load([files["folder"]]))
    used = gen.generate(Request(prompt="a toy [duo-style]", steps=1, seed=3, width=64,
                                height=64))[0]
    digests = {name: load_embedding(files[key]).short_hash
               for name, key in (("toy", "toy"), ("duo-style", "duo"))}
    assert used.info.embeddings == (("toy", digests["toy"]),
                                    ("duo-style", digests["duo-style"]))
    text = a1111_parameters(used)
    assert f'TI hashes: "toy: {digests["toy"]}, duo-style: {digests["duo-style"]}"' in text
    plain = gen.generate(Request(prompt="a cat", steps=1, seed=3, width=64, height=64))[0]
    assert "TI hashes" not in a1111_parameters(plain)


def test_a_model_file_that_is_an_embedding_points_at_embedding_path() -> None:
    from dreamline.models.kinds import sd1_problem

    problem = sd1_problem(["string_to_param", "string_to_token", "name"])
    assert problem is not None and "--embedding_path" in problem


def test_the_cli_uses_embedding_path_and_records_ti_hashes(model_files, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    """--embedding_path reaches the Generator through the REPL, and the PNG names it."""
    from dreamline.cli import main
    from dreamline.pngmeta.chunks import read_text_chunks

    embedding = a1111_pt(tmp_path / "shiny.pt", vectors(2, seed=3))
    script = tmp_path / "lines.txt"
    script.write_text("a <shiny> cat -s 2 -S 7 -W 64 -H 64\n!embeddings\n")
    outdir = tmp_path / "out"
    status = main(["--from_file", str(script), "-o", str(outdir), "-c",
                   str(model_files.registry_yaml), "--embedding_path", str(embedding),
                   "--device", "cpu"])
    captured = capsys.readouterr()
    said = captured.out
    assert status == 0, captured.err
    assert "<shiny>" in said  # !embeddings lists it
    png = next(outdir.glob("*.png"))
    assert 'TI hashes: "shiny: ' in read_text_chunks(str(png))["parameters"]


def test_an_unknown_angle_bracket_word_is_said_once(files: dict[str, Path]) -> None:
    """A new user's finding: '<nosuchembedding>' was encoded as text with no word said."""
    lines: list[str] = []
    text = encoder(EmbeddingSet.load([files["toy"]]), lines)
    text.conditioning("a <toy> on a mat <nosuch> [<Nosuch>, <other>]")
    assert lines == ["<nosuch>, <other>: no such embedding loaded (see !embeddings); encoded "
                     "as plain text"]
    lines.clear()
    text.conditioning("a <TOY> on a mat, 3 < 4 > 2")
    assert lines == []
    none: list[str] = []
    encoder(None, none).conditioning("a <toy> cat")
    assert none == ["<toy>: no such embedding loaded (see !embeddings); encoded as plain text"]
