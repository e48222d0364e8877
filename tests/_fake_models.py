"""Small real architectures with random weights, built offline for tests.

- ``register_tiny_open_clip()``: an open_clip JSON config (32 px ViT, 1-layer
  towers) added to open_clip's registry as ``clipica-test-tiny``.
- ``save_tiny_hf_clip(dir)``: a ``transformers.CLIPModel`` from a tiny
  ``CLIPConfig`` saved with ``save_pretrained``, with a CLIP tokenizer whose
  vocab.json/merges.txt are written from open_clip's bundled BPE vocabulary
  (so the tokenizer is the real CLIP BPE) and a ``CLIPImageProcessor``.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

TINY_OPEN_CLIP = "clipica-test-tiny"
TINY_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def register_tiny_open_clip(tmp_dir: Path) -> str:
    import open_clip

    if TINY_OPEN_CLIP not in open_clip.list_models():
        path = Path(tmp_dir) / f"{TINY_OPEN_CLIP}.json"
        path.write_text(json.dumps(TINY_CONFIG))
        open_clip.add_model_config(path)
    return TINY_OPEN_CLIP


def write_clip_bpe_files(out: Path) -> tuple[Path, Path]:
    """vocab.json + merges.txt of OpenAI CLIP's BPE, from open_clip's bundled vocabulary."""
    from open_clip.tokenizer import SimpleTokenizer, default_bpe

    tok = SimpleTokenizer()
    vocab = dict(tok.encoder)
    vocab["<|startoftext|>"] = vocab.pop("<start_of_text>")
    vocab["<|endoftext|>"] = vocab.pop("<end_of_text>")
    merges = gzip.open(default_bpe()).read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.json").write_text(json.dumps(vocab))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return out / "vocab.json", out / "merges.txt"


def save_tiny_hf_clip(out: Path, seed: int = 0) -> Path:
    import torch
    import transformers

    out = Path(out)
    vocab, merges = write_clip_bpe_files(out / "_bpe")
    tokenizer = transformers.CLIPTokenizer(str(vocab), str(merges))
    config = transformers.CLIPConfig(
        text_config=dict(
            vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
            num_attention_heads=2, max_position_embeddings=16,
            bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
        ),
        vision_config=dict(
            image_size=32, patch_size=8, hidden_size=32, intermediate_size=64,
            num_hidden_layers=1, num_attention_heads=2,
        ),
        projection_dim=16,
    )
    torch.manual_seed(seed)
    model = transformers.CLIPModel(config).eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    transformers.CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(out)
    return out


def save_tiny_open_clip_file(tmp_dir: Path) -> str:
    """A random-weight tiny open_clip checkpoint + ``open_clip_config.json`` beside it.

    The path works as ``--model FILE`` in any process (subprocesses, Ray workers), unlike
    the in-process registry entry of :func:`register_tiny_open_clip`.
    """
    from safetensors.torch import save_file

    from clipica.models import load_encoder

    tmp_dir = Path(tmp_dir)
    arch = register_tiny_open_clip(tmp_dir)
    enc = load_encoder(arch, pretrained="none")
    path = tmp_dir / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in enc.model.state_dict().items()}, str(path))
    (tmp_dir / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CONFIG}))
    return str(path)
