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


# -- open_clip -> transformers conversion ---------------------------------------------------
# The weight mapping follows transformers' own conversion script for OpenAI's CLIP,
# src/transformers/models/clip/convert_clip_original_pytorch_to_hf.py (huggingface/transformers;
# not shipped in the wheel): q/k/v split from the fused in_proj, ln_1/ln_2 -> layer_norm1/2,
# c_fc/c_proj -> fc1/fc2, ln_pre/ln_post -> pre_layrnorm/post_layernorm, and the two projections
# transposed. It is written here as a state-dict mapping so that every tensor is accounted for.


def _tower_layers(prefix_hf: str, prefix_oc: str, sd: dict, n_layers: int) -> dict:
    out = {}
    for i in range(n_layers):
        src, dst = f"{prefix_oc}.resblocks.{i}", f"{prefix_hf}.encoder.layers.{i}"
        for kind in ("weight", "bias"):
            q, k, v = sd[f"{src}.attn.in_proj_{kind}"].chunk(3, dim=0)
            out[f"{dst}.self_attn.q_proj.{kind}"] = q
            out[f"{dst}.self_attn.k_proj.{kind}"] = k
            out[f"{dst}.self_attn.v_proj.{kind}"] = v
            out[f"{dst}.self_attn.out_proj.{kind}"] = sd[f"{src}.attn.out_proj.{kind}"]
            out[f"{dst}.layer_norm1.{kind}"] = sd[f"{src}.ln_1.{kind}"]
            out[f"{dst}.layer_norm2.{kind}"] = sd[f"{src}.ln_2.{kind}"]
            out[f"{dst}.mlp.fc1.{kind}"] = sd[f"{src}.mlp.c_fc.{kind}"]
            out[f"{dst}.mlp.fc2.{kind}"] = sd[f"{src}.mlp.c_proj.{kind}"]
    return out


def convert_open_clip_to_hf(oc_model):
    """An open_clip ``CLIP`` with OpenAI's architecture (ViT, QuickGELU) -> an equivalent ``transformers.CLIPModel``.

    Sizes are read from the open_clip weights; every open_clip tensor except the
    causal mask buffer is used exactly once (checked).
    """
    import torch
    import transformers

    sd = {k: v.detach().clone() for k, v in oc_model.state_dict().items()}
    n_text = len(oc_model.transformer.resblocks)
    n_vision = len(oc_model.visual.transformer.resblocks)
    text_width = sd["token_embedding.weight"].shape[1]
    vision_width, _, patch, _ = sd["visual.conv1.weight"].shape
    config = transformers.CLIPConfig(
        projection_dim=int(sd["text_projection"].shape[1]),
        text_config=dict(
            vocab_size=int(sd["token_embedding.weight"].shape[0]), hidden_size=int(text_width),
            intermediate_size=int(sd["transformer.resblocks.0.mlp.c_fc.weight"].shape[0]),
            num_hidden_layers=n_text, num_attention_heads=int(oc_model.transformer.resblocks[0].attn.num_heads),
            max_position_embeddings=int(sd["positional_embedding"].shape[0]), hidden_act="quick_gelu",
            bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
        ),
        vision_config=dict(
            hidden_size=int(vision_width),
            intermediate_size=int(sd["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0]),
            num_hidden_layers=n_vision,
            num_attention_heads=int(oc_model.visual.transformer.resblocks[0].attn.num_heads),
            image_size=int(oc_model.visual.image_size[0]), patch_size=int(patch), hidden_act="quick_gelu",
        ),
    )
    hf = {
        "text_model.embeddings.token_embedding.weight": sd["token_embedding.weight"],
        "text_model.embeddings.position_embedding.weight": sd["positional_embedding"],
        "text_model.final_layer_norm.weight": sd["ln_final.weight"],
        "text_model.final_layer_norm.bias": sd["ln_final.bias"],
        "text_projection.weight": sd["text_projection"].T.contiguous(),
        "visual_projection.weight": sd["visual.proj"].T.contiguous(),
        "vision_model.pre_layrnorm.weight": sd["visual.ln_pre.weight"],
        "vision_model.pre_layrnorm.bias": sd["visual.ln_pre.bias"],
        "vision_model.post_layernorm.weight": sd["visual.ln_post.weight"],
        "vision_model.post_layernorm.bias": sd["visual.ln_post.bias"],
        "vision_model.embeddings.patch_embedding.weight": sd["visual.conv1.weight"],
        "vision_model.embeddings.class_embedding": sd["visual.class_embedding"],
        "vision_model.embeddings.position_embedding.weight": sd["visual.positional_embedding"],
        "logit_scale": sd["logit_scale"],
        **_tower_layers("text_model", "transformer", sd, n_text),
        **_tower_layers("vision_model", "visual.transformer", sd, n_vision),
    }
    with torch.random.fork_rng(devices=[]):
        model = transformers.CLIPModel(config).eval()
    missing, unexpected = model.load_state_dict(hf, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    assert not missing and not unexpected, (missing, unexpected)
    used = {id(v) for v in hf.values()}
    unused = [k for k, v in sd.items() if k != "attn_mask" and not k.endswith("in_proj_weight")
              and not k.endswith("in_proj_bias") and k not in ("text_projection", "visual.proj") and id(v) not in used]
    assert not unused, unused
    return model


def save_hf_conversion(oc_model, out: Path) -> Path:
    """``convert_open_clip_to_hf`` saved with ``save_pretrained``, plus the CLIP tokenizer made offline
    from open_clip's BPE vocabulary and transformers' default ``CLIPImageProcessor`` for the image size."""
    import transformers

    out = Path(out)
    model = convert_open_clip_to_hf(oc_model)
    model.save_pretrained(out)
    vocab, merges = write_clip_bpe_files(out / "_bpe")
    transformers.CLIPTokenizer(str(vocab), str(merges)).save_pretrained(out)
    side = int(oc_model.visual.image_size[0])
    transformers.CLIPImageProcessor(
        size={"shortest_edge": side}, crop_size={"height": side, "width": side}
    ).save_pretrained(out)
    return out
