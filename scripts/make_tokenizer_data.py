"""Derive the CLIP ViT-L/14 tokenizer files (vocab.json, merges.txt) from OpenAI's BPE file.

SD 1.x single-file checkpoints carry no tokenizer, and no hub can be reached, so dreamline ships
these files.  The source, ``bpe_simple_vocab_16e6.txt.gz`` (MIT, Copyright 2021 OpenAI), is inside
the ``clip-anytorch`` wheel:  ``pip download --no-deps clip-anytorch==2.6.0`` and pass the wheel.

    python scripts/make_tokenizer_data.py clip_anytorch-2.6.0-py3-none-any.whl
"""

from __future__ import annotations

import gzip
import json
import sys
import zipfile
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parents[1] / "src" / "dreamline" / "data" / "tokenizer"
MERGE_COUNT = 49152 - 256 - 2  # CLIP keeps this many merges of the file


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table, which CLIP's BPE also uses."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars), strict=False))


def derive(bpe_lines: list[str]) -> tuple[dict[str, int], list[str]]:
    merges = bpe_lines[1 : 1 + MERGE_COUNT]
    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols]
    vocab += ["".join(merge.split()) for merge in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {token: index for index, token in enumerate(vocab)}, merges


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as archive:
        raw = archive.read("clip/bpe_simple_vocab_16e6.txt.gz")
    lines = gzip.decompress(raw).decode("utf-8").split("\n")
    vocab, merges = derive(lines)
    if len(vocab) != 49408:
        raise SystemExit(f"expected 49408 tokens, derived {len(vocab)}")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    header = "#version: 0.2\n"
    (OUT_DIR / "merges.txt").write_text(header + "\n".join(merges) + "\n", encoding="utf-8")
    print(f"wrote {len(vocab)} tokens and {len(merges)} merges to {OUT_DIR}")


if __name__ == "__main__":
    main(sys.argv[1])
