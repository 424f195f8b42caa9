"""Train dreamline's built-in demo model from nothing: a small SD 1.x-style text-to-image model.

Same kind of model as Stable Diffusion 1.x (CLIP text encoder with the real CLIP tokenizer,
cross-attention UNet2DConditionModel, AutoencoderKL, the SD noise schedule with epsilon
prediction), only small, trained on Noto Color Emoji glyphs captioned with their Unicode names
(see data.py).  Two stages:

1. the VAE (32x32 RGB <-> 4 x 8 x 8 latents), short; its latent std sets ``scaling_factor``;
2. the text encoder and the UNet together, on latents cached from the frozen VAE, with 10% empty
   captions so classifier-free guidance works, min-SNR loss weights and an EMA of the weights.

At the end the EMA weights are exported in diffusers layout, fp16 safetensors, into
``src/dreamline/data/demo/``.  Everything is seeded; checkpoints go to ``.train/``.

    python scripts/demo_model/train.py                  # from nothing (CPU: about 1.5 h, 1 thread)
    python scripts/demo_model/train.py --resume         # continue after an interruption
    python scripts/demo_model/train.py --device cuda    # minutes on a GPU
    python scripts/demo_model/train.py --export-only    # re-export the last checkpoint
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data  # noqa: E402  (scripts/demo_model/data.py)

from diffusers import AutoencoderKL, UNet2DConditionModel  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer  # noqa: E402

REPO = data.REPO
TRAIN_DIR = data.TRAIN_DIR
EXPORT_DIR = REPO / "src" / "dreamline" / "data" / "demo"
TOKENIZER_DIR = REPO / "src" / "dreamline" / "data" / "tokenizer"
IMAGE_SIDE = 32
LATENT_SIDE = 8  # VAE factor 4
CAPTION_DROP = 0.1  # share of empty captions, for classifier-free guidance
MIN_SNR_GAMMA = 5.0

# SD 1.x's noise schedule: the config dreamline ships for single-file checkpoints.
SCHEDULER_CONFIG: dict[str, Any] = {
    key: value for key, value in json.loads(
        (REPO / "src" / "dreamline" / "data" / "sd15" / "scheduler" / "scheduler_config.json")
        .read_text()).items()
    if key != "_diffusers_version"
}


def build_vae() -> AutoencoderKL:
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(32, 64, 64),
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        layers_per_block=1,
        norm_num_groups=32,
        sample_size=IMAGE_SIDE,
        scaling_factor=1.0,  # set from the measured latent std after stage 1
    )


def build_text_encoder() -> CLIPTextModel:
    config = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=64,
        intermediate_size=256,
        num_hidden_layers=3,
        num_attention_heads=4,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
        eos_token_id=2,  # as SD 1.x: transformers then pools at the argmax id (49407)
    )
    return CLIPTextModel(config)


def build_unet() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=LATENT_SIDE,
        in_channels=4,
        out_channels=4,
        block_out_channels=(64, 96, 128),
        layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=64,
        attention_head_dim=8,
        norm_num_groups=32,
        norm_eps=1e-5,
        flip_sin_to_cos=True,
        freq_shift=0,
        act_fn="silu",
    )


def alphas_cumprod() -> torch.Tensor:
    """SD's scaled_linear schedule: betas evenly spaced in sqrt between 0.00085 and 0.012."""
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0).float()


def lr_at(step: int, total: int, peak: float, warmup: int = 200) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def step_generator(seed: int, stage: int, step: int) -> torch.Generator:
    """A fresh RNG per step, so a resumed run draws exactly what an uninterrupted one would."""
    return torch.Generator().manual_seed(seed * 1_000_003 + stage * 100_003 + step)


def to_unit(images: np.ndarray) -> torch.Tensor:
    """uint8 N x H x W x 3 -> float N x 3 x H x W in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def save_atomic(state: dict[str, Any], path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_dataset(args: argparse.Namespace) -> dict[str, np.ndarray]:
    path = TRAIN_DIR / f"emoji_{IMAGE_SIDE}px_{args.glyphs or 'all'}.npz"
    if not path.exists():
        print(f"rendering the emoji data into {path}", flush=True)
        data.build(args.glyphs, args.variants, IMAGE_SIDE, args.seed, args.min_distance,
                   **data.recipe_options(args))
    with np.load(path) as npz:
        return {key: npz[key] for key in npz.files}


# --- stage 1: the VAE ---------------------------------------------------------------------------------


def train_vae(args: argparse.Namespace, images: np.ndarray, device: torch.device) -> AutoencoderKL:
    """Reconstruction (L1 + MSE) with a small KL term; 32x32 emoji need no GAN or perceptual loss."""
    ckpt_path = TRAIN_DIR / "vae.pt"
    if args.init_from is not None:  # reuse an exported VAE as it is (same architecture)
        return AutoencoderKL.from_pretrained(str(args.init_from / "vae"), torch_dtype=torch.float32).to(device).eval()
    torch.manual_seed(args.seed)
    vae = build_vae().to(device)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    start, seconds_before = 0, 0.0
    if args.resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device, weights_only=True)
        vae.load_state_dict(state["vae"])
        optimizer.load_state_dict(state["optimizer"])
        start, seconds_before = int(state["step"]), float(state.get("seconds", 0.0))
    if start >= args.vae_steps:
        return vae.eval()
    started = time.monotonic()
    pixels = to_unit(images)
    vae.train()
    bar = tqdm(range(start, args.vae_steps), desc="vae", initial=start, total=args.vae_steps,
               mininterval=args.bar_interval, file=sys.stdout)
    smoothed = None
    for step in bar:
        gen = step_generator(args.seed, 1, step)
        batch = pixels[torch.randint(len(pixels), (args.vae_batch,), generator=gen)].to(device)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, args.vae_steps, args.vae_lr, warmup=100)
        posterior = vae.encode(batch).latent_dist
        noise = torch.randn(posterior.mean.shape, generator=gen).to(device)
        latents = posterior.mean + posterior.std * noise
        recon = vae.decode(latents).sample
        rec_loss = F.l1_loss(recon, batch) + F.mse_loss(recon, batch)
        kl_loss = posterior.kl().mean()
        loss = rec_loss + args.kl_weight * kl_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        smoothed = rec_loss.item() if smoothed is None else 0.98 * smoothed + 0.02 * rec_loss.item()
        bar.set_postfix(rec=f"{smoothed:.4f}", kl=f"{kl_loss.item():.1f}", refresh=False)
        done = step + 1
        if done % args.save_every == 0 or done == args.vae_steps:
            save_atomic({"vae": vae.state_dict(), "optimizer": optimizer.state_dict(), "step": done,
                         "seconds": seconds_before + time.monotonic() - started}, ckpt_path)
    bar.close()
    return vae.eval()


@torch.no_grad()
def encode_all(vae: AutoencoderKL, images: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
    """Posterior mean and std of every training image, and the scaling factor 1 / latent std."""
    means, stds = [], []
    pixels = to_unit(images)
    for start in range(0, len(pixels), 256):
        posterior = vae.encode(pixels[start : start + 256].to(device)).latent_dist
        means.append(posterior.mean.cpu())
        stds.append(posterior.std.cpu())
    mean, std = torch.cat(means), torch.cat(stds)
    sample_std = torch.sqrt((mean**2).mean() - mean.mean() ** 2 + (std**2).mean())
    recon_error = []
    for start in range(0, min(len(pixels), 1024), 256):
        recon = vae.decode(mean[start : start + 256].to(device)).sample.clamp(-1, 1).cpu()
        recon_error.append((recon - pixels[start : start + 256]).abs().mean(dim=(1, 2, 3)))
    mae = torch.cat(recon_error).mean().item() * 127.5
    print(f"VAE: latent std {sample_std.item():.4f}, reconstruction error {mae:.2f}/255", flush=True)
    return {"mean": mean, "std": std, "scaling_factor": 1.0 / sample_std, "recon_mae": torch.tensor(mae)}


# --- stage 2: text encoder + UNet ---------------------------------------------------------------------


def tokenize_all(tokenizer: CLIPTokenizer, captions: list[str]) -> torch.Tensor:
    return tokenizer(captions, padding="max_length", max_length=77, truncation=True,
                     return_tensors="pt").input_ids


class Ema:
    """Exponential moving average of the trainable weights; the export uses these."""

    def __init__(self, parameters: list[torch.nn.Parameter], decay: float) -> None:
        self.decay = decay
        self.shadow = [p.detach().clone() for p in parameters]

    @torch.no_grad()
    def update(self, parameters: list[torch.nn.Parameter], step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        for shadow, param in zip(self.shadow, parameters, strict=False):
            shadow.lerp_(param.detach(), 1 - decay)

    @torch.no_grad()
    def copy_to(self, parameters: list[torch.nn.Parameter]) -> None:
        for shadow, param in zip(self.shadow, parameters, strict=False):
            param.copy_(shadow)


def trainable(unet: UNet2DConditionModel, text_encoder: CLIPTextModel) -> list[torch.nn.Parameter]:
    return list(unet.parameters()) + [p for p in text_encoder.parameters() if p.requires_grad]


def build_diffusion_models(seed: int, device: torch.device,
                           init_from: Path | None = None) -> tuple[UNet2DConditionModel, CLIPTextModel]:
    """Fresh seeded models, or (``init_from``: an exported model folder) a warm start from its weights."""
    torch.manual_seed(seed + 7)
    text_encoder = build_text_encoder().to(device)
    if init_from is not None:
        unet = UNet2DConditionModel.from_pretrained(str(init_from / "unet"), torch_dtype=torch.float32)
        encoder = CLIPTextModel.from_pretrained(str(init_from / "text_encoder"), torch_dtype=torch.float32)
        text_encoder.load_state_dict(encoder.state_dict())
        text_encoder.get_input_embeddings().weight.requires_grad_(False)
        return unet.to(device), text_encoder
    # Random, frozen token embeddings: distinct words stay distinct, and the 49408-row table
    # (most rows never seen in training) needs no optimiser state or updates.
    text_encoder.get_input_embeddings().weight.requires_grad_(False)
    unet = build_unet().to(device)
    return unet, text_encoder


def kept_glyph_rows(dataset: dict[str, np.ndarray], reference: Path | None) -> torch.Tensor:
    """Rows of ``dataset`` whose glyph is named in ``reference`` (a model's reference.npz)."""
    if reference is None:
        return torch.zeros(0, dtype=torch.long)
    with np.load(reference) as npz:
        kept = {str(name) for name in npz["names"]}
    names = [str(name) for name in dataset["names"]]
    wanted = np.array([name in kept for name in names])
    rows = np.flatnonzero(wanted[dataset["glyph_ids"]])
    print(f"keeping {int(wanted.sum())} of {len(kept)} glyphs named in {reference} in every batch",
          flush=True)
    return torch.from_numpy(rows)


def train_diffusion(
    args: argparse.Namespace,
    dataset: dict[str, np.ndarray],
    latents: dict[str, torch.Tensor],
    device: torch.device,
) -> tuple[UNet2DConditionModel, CLIPTextModel]:
    ckpt_path = TRAIN_DIR / "diffusion.pt"
    unet, text_encoder = build_diffusion_models(args.seed, device, args.init_from)
    params = trainable(unet, text_encoder)
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    ema = Ema(params, args.ema_decay)
    start, seconds_before = 0, 0.0
    if args.resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device, weights_only=True)
        seconds_before = float(state.get("seconds", 0.0))
        unet.load_state_dict(state["unet"])
        text_encoder.load_state_dict(state["text_encoder"])
        optimizer.load_state_dict(state["optimizer"])
        ema.shadow = [t.to(device) for t in state["ema"]]
        start = int(state["step"])
    tokenizer = CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR))
    captions = [str(c) for c in dataset["captions"]]
    unique = sorted(set(captions))
    position = {caption: k for k, caption in enumerate(unique)}
    caption_index = torch.tensor([position[c] for c in captions])
    token_ids = tokenize_all(tokenizer, unique + [""])
    empty = len(unique)
    # each glyph's canonical image (its first row): centred, white, captioned with its name
    canonical_rows = torch.from_numpy(np.unique(dataset["glyph_ids"], return_index=True)[1])
    canonical_count = round(args.batch * args.canonical_share)
    # every image (any variant) of the glyphs a warm start already knew, so they are not forgotten
    keep_rows = kept_glyph_rows(dataset, args.keep_names)
    keep_count = round(args.batch * args.keep_share) if len(keep_rows) else 0
    scale = float(latents["scaling_factor"])
    latent_mean, latent_std = latents["mean"], latents["std"]
    abar = alphas_cumprod().to(device)
    snr = abar / (1 - abar)
    loss_weight = torch.clamp(snr, max=MIN_SNR_GAMMA) / snr  # min-SNR-gamma for epsilon targets

    unet.train()
    text_encoder.train()
    bar = tqdm(range(start, args.steps), desc="unet+text", initial=start, total=args.steps,
               mininterval=args.bar_interval, file=sys.stdout)
    smoothed = None
    started = time.monotonic()
    for step in bar:
        gen = step_generator(args.seed, 2, step)
        rows = torch.randint(len(caption_index), (args.batch,), generator=gen)
        if canonical_count:
            picks = torch.randint(len(canonical_rows), (canonical_count,), generator=gen)
            rows[:canonical_count] = canonical_rows[picks]
        if keep_count:
            picks = torch.randint(len(keep_rows), (keep_count,), generator=gen)
            rows[canonical_count:canonical_count + keep_count] = keep_rows[picks]
        eps_latent = torch.randn((args.batch, 4, LATENT_SIDE, LATENT_SIDE), generator=gen)
        clean = ((latent_mean[rows] + latent_std[rows] * eps_latent) * scale).to(device)
        noise = torch.randn(clean.shape, generator=gen).to(device)
        timesteps = torch.randint(0, 1000, (args.batch,), generator=gen).to(device)
        which = caption_index[rows].clone()
        which[torch.rand(args.batch, generator=gen) < CAPTION_DROP] = empty
        ids = token_ids[which].to(device)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, args.steps, args.lr, warmup=args.warmup)

        a = abar[timesteps].view(-1, 1, 1, 1)
        noisy = a.sqrt() * clean + (1 - a).sqrt() * noise
        context = text_encoder(ids)[0]
        prediction = unet(noisy, timesteps, context).sample
        per_sample = F.mse_loss(prediction, noise, reduction="none").mean(dim=(1, 2, 3))
        loss = (per_sample * loss_weight[timesteps]).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        ema.update(params, step)

        smoothed = per_sample.mean().item() if smoothed is None else 0.99 * smoothed + 0.01 * per_sample.mean().item()
        bar.set_postfix(mse=f"{smoothed:.4f}", lr=f"{optimizer.param_groups[0]['lr']:.1e}", refresh=False)
        done = step + 1
        if done % args.save_every == 0 or done == args.steps:
            save_atomic(
                {"unet": unet.state_dict(), "text_encoder": text_encoder.state_dict(),
                 "optimizer": optimizer.state_dict(), "ema": ema.shadow, "step": done,
                 "seconds": seconds_before + time.monotonic() - started},
                ckpt_path,
            )
    bar.close()
    ema.copy_to(params)
    return unet.eval(), text_encoder.eval()


# --- export --------------------------------------------------------------------------------------------


def export(vae: AutoencoderKL, unet: UNet2DConditionModel, text_encoder: CLIPTextModel,
           scaling_factor: float, out_dir: Path = EXPORT_DIR) -> int:
    """Write the diffusers folder (fp16 safetensors); keep MODEL_CARD.md and reference files."""
    vae.register_to_config(scaling_factor=round(float(scaling_factor), 5))
    for part, model in (("vae", vae), ("unet", unet), ("text_encoder", text_encoder)):
        target = out_dir / part
        if target.exists():
            shutil.rmtree(target)
        model.to("cpu", torch.float16).save_pretrained(str(target), safe_serialization=True)
        config = target / "config.json"  # a warm start records its local folder: not shipped
        config.write_text("".join(line for line in config.read_text().splitlines(True)
                                  if '"_name_or_path"' not in line))
        model.to(torch.float32)
    tokenizer_dir = out_dir / "tokenizer"
    if tokenizer_dir.exists():
        shutil.rmtree(tokenizer_dir)
    shutil.copytree(TOKENIZER_DIR, tokenizer_dir)  # identical to dreamline's shipped tokenizer
    (out_dir / "scheduler").mkdir(exist_ok=True)
    scheduler = dict(SCHEDULER_CONFIG, _diffusers_version="0.42.1")
    (out_dir / "scheduler" / "scheduler_config.json").write_text(json.dumps(scheduler, indent=2) + "\n")
    index = {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": "0.42.1",
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "PNDMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (out_dir / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    total = sum(f.stat().st_size for f in out_dir.rglob("*") if f.is_file())
    print(f"exported to {out_dir} ({total / 2**20:.1f} MiB in all)", flush=True)
    return total


def write_reference(dataset: dict[str, np.ndarray], out_dir: Path = EXPORT_DIR) -> None:
    """Canonical glyphs (32x32 RGB) and captions, so tests and evaluation need no font."""
    np.savez_compressed(
        out_dir / "reference.npz",
        canonical=dataset["canonical"],
        names=dataset["names"],
        codepoints=dataset["codepoints"],
    )


def write_vocabulary(dataset: dict[str, np.ndarray], out_dir: Path = EXPORT_DIR) -> Path:
    """``vocabulary.txt``: every caption the model learnt, one picture a line (``!vocabulary``)."""
    colours = ", ".join(name for name in data.BACKGROUNDS if name != "white")
    lines = [
        "# The emoji the demo model was trained on, one a line: its Unicode name, then any other",
        "# words it was trained on for it.  Any of them may end in 'on a <colour> background'",
        f"# ({colours}).",
    ]
    for name, aliases in zip(dataset["names"], dataset["aliases"], strict=True):
        lines.append(" | ".join([str(name), *[a for a in str(aliases).split(" | ") if a]]))
    path = out_dir / "vocabulary.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 is faster than 2 when the cores are shared)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue from .train/ checkpoints")
    parser.add_argument("--export-only", action="store_true", help="export the last checkpoints")
    parser.add_argument("--glyphs", type=int, default=200, help="0: every glyph the font draws")
    parser.add_argument("--variants", type=int, default=64)
    data.add_recipe_options(parser)
    parser.add_argument("--init-from", type=Path, default=None,
                        help="an exported model folder to start from (its VAE is kept as it is)")
    parser.add_argument("--min-distance", type=float, default=12.0)
    parser.add_argument("--vae-steps", type=int, default=1500)
    parser.add_argument("--vae-batch", type=int, default=32)
    parser.add_argument("--vae-lr", type=float, default=1e-3)
    parser.add_argument("--kl-weight", type=float, default=1e-6)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=8e-4)
    parser.add_argument("--canonical-share", type=float, default=0.0,
                        help="share of each batch drawn from the glyphs' canonical images")
    parser.add_argument("--keep-names", type=Path, default=None,
                        help="a reference.npz whose glyphs get --keep-share of every batch")
    parser.add_argument("--keep-share", type=float, default=0.0,
                        help="share of each batch drawn from the --keep-names glyphs' images")
    parser.add_argument("--warmup", type=int, default=200, help="learning-rate warm-up steps")
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument("--save-every", type=int, default=250)
    parser.add_argument("--bar-interval", type=float, default=30.0, help="seconds between bar updates")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    TRAIN_DIR.mkdir(exist_ok=True)
    EXPORT_DIR.mkdir(parents=True, exist_ok=True)
    if args.export_only:
        args.resume = True
    dataset = load_dataset(args)
    print(f"{len(dataset['images'])} images of {len(dataset['names'])} emoji, "
          f"{len(set(dataset['captions'].tolist()))} captions", flush=True)
    if args.export_only and not (TRAIN_DIR / "diffusion.pt").exists():
        raise SystemExit("nothing to export: .train/diffusion.pt is missing")
    vae = train_vae(args, dataset["images"], device)
    latents_path = TRAIN_DIR / "latents.pt"
    if args.resume and latents_path.exists():
        latents = torch.load(latents_path, weights_only=True)
    else:
        latents = encode_all(vae, dataset["images"], device)
        if args.init_from is not None:  # the warm-started UNet learnt this VAE's scaling
            latents["scaling_factor"] = torch.tensor(float(vae.config.scaling_factor))
        torch.save(latents, latents_path)
    if args.export_only:
        args.steps = int(torch.load(TRAIN_DIR / "diffusion.pt", weights_only=True)["step"])
    unet, text_encoder = train_diffusion(args, dataset, latents, device)
    export(vae, unet, text_encoder, float(latents["scaling_factor"]))
    write_reference(dataset)
    write_vocabulary(dataset)
    seconds = sum(float(torch.load(TRAIN_DIR / name, weights_only=True).get("seconds", 0.0))
                  for name in ("vae.pt", "diffusion.pt") if (TRAIN_DIR / name).exists())
    stats = {"train_minutes": round(seconds / 60, 1), "threads": args.threads,
             "device": str(device), "latent_std": 1.0 / float(latents["scaling_factor"]),
             "vae_recon_mae_255": float(latents["recon_mae"]),
             "glyphs": int(len(dataset["names"])), "images": int(len(dataset["images"])),
             "vae_steps": args.vae_steps, "steps": args.steps, "batch": args.batch,
             "lr": args.lr, "seed": args.seed,
             "init_from": str(args.init_from) if args.init_from else None}
    (TRAIN_DIR / "train_stats.json").write_text(json.dumps(stats, indent=2) + "\n")


if __name__ == "__main__":
    main()
