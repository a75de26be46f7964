#!/usr/bin/env python3
"""Reference fixtures for the teacher forward pass.

Builds two tiny random Llama-family checkpoints with a fixed seed and writes, per model, under
tests/data/teacher/<name>/:
  - an HF directory (config.json + model.safetensors, via save_pretrained);
  - the same weights as GGUF F32 and Q8_0 (model-f32.gguf, model-q8_0.gguf), laid out as llama.cpp's
    converter does: llama arch has q/k rows permuted for its RoPE, qwen2 is stored in HF order;
  - oracle.json describing the reference dumps, and raw little-endian float32 files:
      logits_<s>.f32          transformers fp32 logits [T, V] of sequence s (safetensors / GGUF F32 weights)
      logits_q8_0_<s>.f32     the same for the Q8_0 weights, dequantized (so Q8_0 loading is checked exactly)
      attn_in_<l>.f32         layer l's attention input (after input RMSNorm) on sequence 0, [T, C]
      attn_out_<l>.f32        layer l's attention output (after o_proj, before the residual), [T, C]
      logits_last_attn_off_0.f32  (models with their own seed) logits of sequence 0 with the last
                              layer's o_proj zeroed: a student that keeps the other layers' attention
                              and whose last layer's time mixing outputs zero must give these

  qwen2_tiny: attention biases, GQA 4 q / 2 kv heads of 16, untied head, rope_theta 1e6, F32 safetensors.
  llama_tiny: tied embeddings, GQA 4 q / 1 kv heads of 32, rms_eps 1e-5, BF16 safetensors (the oracle
              runs in fp32 on the bf16-rounded weights).
  qwen3_tiny: per-head RMSNorm of q and k, no biases, explicit head_dim 32 with 4 q / 2 kv heads (so
              the attention width 128 is not the hidden size 64), tied embeddings, F32 safetensors;
              its own seed, so it can be made alone (--only qwen3_tiny) without changing the others.
  llama3_tiny: Llama 3's RoPE frequency scaling (rope_type llama3, factor 8, low/high frequency
              factors 1 and 4 over an original context of 64: at head_dim 32 and theta 5e5 the pairs
              fall in all three regimes, kept, interpolated and divided), GQA 4 q / 2 kv heads,
              untied, F32; its GGUF carries the factors as rope_freqs.weight, as llama.cpp's
              converter writes them; its own seed.
  mistral_tiny: a sliding window of 4 keys (sequences of 12 and 7 tokens), 4 q / 2 kv heads of 16,
              untied, F32 safetensors only: llama.cpp converts Mistral to its llama architecture,
              which has no window, so there is no GGUF to compare; its own seed.
  gemma3_tiny: Gemma 3 (Gemma3ForCausalLM): embedding scaled by √C, (1 + w) RMSNorms before and after
              attention and MLP, GeGLU (gelu tanh), per-head q/k norms, 4 q / 2 kv heads of 32 (attention
              width 128, hidden 64), query_pre_attn_scalar 32, six layers of which the sixth is global
              and the others local (window 4, RoPE base 1e4; global 1e6), tied; F32 safetensors and GGUF
              (norms stored as 1 + w, as llama.cpp's converter writes them); its own seed.

Run: /tmp/venv/py/bin/python tools/oracle/make_teacher_fixtures.py [--out tests/data/teacher] [--only NAME]
"""
import argparse
import copy
import json
import os

import gguf
import numpy as np
import torch
from transformers import (Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig, LlamaForCausalLM, MistralConfig,
                          MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM)

SEED = 20260126
VOCAB = 300
SEQUENCES = [
    [1, 17, 250, 3, 99, 299, 0, 45, 45, 180, 7, 211],
    [5, 4, 3, 2, 1, 260, 128],
]


def make_models():
    common = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                  max_position_embeddings=128, attn_implementation="eager")
    qwen = Qwen2Config(num_attention_heads=4, num_key_value_heads=2, rope_theta=1e6, rms_norm_eps=1e-6,
                       tie_word_embeddings=False, bos_token_id=None, eos_token_id=2, **common)
    llama = LlamaConfig(num_attention_heads=2, num_key_value_heads=1, head_dim=32, rope_theta=1e5,
                        rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, **common)
    qwen3 = Qwen3Config(num_attention_heads=4, num_key_value_heads=2, head_dim=32, rope_theta=1e6,
                        rms_norm_eps=1e-6, tie_word_embeddings=True, attention_bias=False, bos_token_id=None,
                        eos_token_id=2, **common)
    llama3 = LlamaConfig(num_attention_heads=4, num_key_value_heads=2, head_dim=32, rope_theta=5e5,
                         rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                       "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
                         rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, **common)
    mistral = MistralConfig(num_attention_heads=4, num_key_value_heads=2, sliding_window=4, rope_theta=1e4,
                            rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, **common)
    # Six layers so that llama.cpp's fixed pattern (every sixth layer global) has one of each kind.
    gemma3 = Gemma3TextConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=6,
                              num_attention_heads=4, num_key_value_heads=2, head_dim=32, query_pre_attn_scalar=32,
                              sliding_window=4, rope_theta=1e6, rope_local_base_freq=1e4, rms_norm_eps=1e-6,
                              max_position_embeddings=128, tie_word_embeddings=True, bos_token_id=2, eos_token_id=1,
                              pad_token_id=0, attn_implementation="eager")
    # (name, class, config, saved dtype, seed: None continues the stream of the models before it)
    return [("qwen2_tiny", Qwen2ForCausalLM, qwen, torch.float32, None),
            ("llama_tiny", LlamaForCausalLM, llama, torch.bfloat16, None),
            ("qwen3_tiny", Qwen3ForCausalLM, qwen3, torch.float32, SEED + 3),
            ("llama3_tiny", LlamaForCausalLM, llama3, torch.float32, SEED + 4),
            ("mistral_tiny", MistralForCausalLM, mistral, torch.float32, SEED + 5),
            ("gemma3_tiny", Gemma3ForCausalLM, gemma3, torch.float32, SEED + 6)]


def randomize(model):
    """Random weights with magnitudes that keep activations O(1); norms away from 1 (Gemma's weigh by
    1 + w, so there w itself is the small part)."""
    offset = 0.0 if model.config.model_type.startswith("gemma") else 1.0
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(offset + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / np.sqrt(p.shape[-1]))


def run_oracle(model, ids, capture=False):
    dumps = {}
    hooks = []
    if capture:
        for l, layer in enumerate(model.model.layers):
            hooks.append(layer.input_layernorm.register_forward_hook(
                lambda m, i, o, l=l: dumps.__setitem__(f"attn_in_{l}", o[0].detach().clone())))
            hooks.append(layer.self_attn.register_forward_hook(
                lambda m, i, o, l=l: dumps.__setitem__(f"attn_out_{l}", o[0][0].detach().clone())))
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    for h in hooks:
        h.remove()
    return logits, dumps


def write_f32(path, t):
    np.ascontiguousarray(t.detach().cpu().numpy(), dtype="<f4").tofile(path)


def permute_rows(w, heads):
    """HF rows -> llama.cpp rows for q/k: within a head, interleave the two rotate_half halves."""
    rows = w.shape[0]
    return w.reshape(heads, 2, rows // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


GGUF_NAMES = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}
LAYER_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight", "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.weight": "attn_k.weight", "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.weight": "attn_v.weight", "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "pre_feedforward_layernorm.weight": "ffn_norm.weight",  # Gemma: its post_attention_layernorm is below
    "post_feedforward_layernorm.weight": "post_ffw_norm.weight",
    "self_attn.q_norm.weight": "attn_q_norm.weight", "self_attn.k_norm.weight": "attn_k_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def gguf_name(hf, arch):
    if hf in GGUF_NAMES:
        return GGUF_NAMES[hf]
    parts = hf.split(".")  # model.layers.N.rest
    rest = ".".join(parts[3:])
    if arch == "gemma3" and rest == "post_attention_layernorm.weight":
        return f"blk.{parts[2]}.post_attention_norm.weight"
    return f"blk.{parts[2]}." + LAYER_NAMES[rest]


def tokenizer_vocab():
    """A byte-level token list (256 bytes, 3 specials, padding) so the GGUF carries a tokenizer block."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    extra, mapping = 0, {}
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    tokens = [mapping[b] for b in range(256)] + ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    types = [1] * 256 + [3, 3, 3]
    tokens += [f"[PAD{i}]" for i in range(len(tokens), VOCAB)]
    types += [5] * (VOCAB - len(types))
    return tokens, types


def llama3_rope_factors(cfg, head_dim):
    """Per rotated pair: the divisor of its frequency under Llama 3's scaling (llama.cpp's rope_freqs)."""
    rs = cfg.rope_scaling
    theta = float(cfg.rope_theta)
    old = rs["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old / rs["low_freq_factor"], old / rs["high_freq_factor"]
    out = []
    for i in range(head_dim // 2):
        wavelen = 2 * np.pi * theta ** (2 * i / head_dim)
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(rs["factor"])
        else:
            smooth = (old / wavelen - rs["low_freq_factor"]) / (rs["high_freq_factor"] - rs["low_freq_factor"])
            out.append(1.0 / ((1 - smooth) / rs["factor"] + smooth))
    return np.array(out, dtype=np.float32)


def write_gguf(path, arch, cfg, state, qtype):
    """state: HF name -> fp32 numpy array (HF layout)."""
    w = gguf.GGUFWriter(path, arch)
    heads, kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    w.add_name(f"{arch} tiny test model")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(float(cfg.rope_parameters["rope_theta"]) if hasattr(cfg, "rope_parameters")
                         and cfg.rope_parameters else float(cfg.rope_theta))
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    if arch == "gemma3":
        w.add_sliding_window(cfg.sliding_window)
    w.add_file_type(7 if qtype == gguf.GGMLQuantizationType.Q8_0 else 0)
    if qtype != gguf.GGMLQuantizationType.F32:
        w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    tokens, types = tokenizer_vocab()
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2" if arch.startswith("qwen") else "smollm")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_eos_token_id(256)
    w.add_bos_token_id(256)
    w.add_add_bos_token(False)
    if (getattr(cfg, "rope_scaling", None) or {}).get("rope_type") == "llama3":
        w.add_tensor("rope_freqs.weight", llama3_rope_factors(cfg, head_dim))
    for hf, t in state.items():
        if arch == "llama" and (".q_proj." in hf or ".k_proj." in hf):
            t = permute_rows(t, heads if ".q_proj." in hf else kv_heads)
        if arch == "gemma3" and hf.endswith("norm.weight"):
            t = t + 1.0  # llama.cpp's converter stores Gemma's norms as the 1 + w they weigh by
        quantize = qtype != gguf.GGMLQuantizationType.F32 and t.ndim == 2
        if quantize:
            w.add_tensor(gguf_name(hf, arch), gguf.quants.quantize(t, qtype), raw_dtype=qtype)
        else:
            w.add_tensor(gguf_name(hf, arch), np.ascontiguousarray(t, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def q8_roundtrip(state):
    """The weights a Q8_0 GGUF holds, dequantized: what a correct loader must reproduce."""
    out = {}
    for hf, t in state.items():
        if t.ndim == 2:
            q = gguf.quants.quantize(t, gguf.GGMLQuantizationType.Q8_0)
            out[hf] = gguf.quants.dequantize(q, gguf.GGMLQuantizationType.Q8_0).reshape(t.shape)
        else:
            out[hf] = t
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "../../tests/data/teacher"))
    ap.add_argument("--only", help="make this fixture alone (one with its own seed)")
    args = ap.parse_args()
    torch.manual_seed(SEED)
    for name, cls, cfg, save_dtype, seed in make_models():
        if args.only and name != args.only:
            continue
        if args.only and seed is None:
            raise SystemExit(f"{name} continues the random stream of the models before it: make them all")
        if seed is not None:
            torch.manual_seed(seed)
        out = os.path.join(args.out, name)
        os.makedirs(out, exist_ok=True)
        model = cls(cfg).float().eval()
        randomize(model)
        if save_dtype != torch.float32:  # the oracle runs on exactly the weights the file holds
            with torch.no_grad():
                for p in model.parameters():
                    p.copy_(p.to(save_dtype).float())
        # Save a converted copy: .to() on the model itself would also round the fp32 RoPE inv_freq
        # buffer to bf16, and the oracle must stay fp32.
        copy.deepcopy(model).to(save_dtype).save_pretrained(out, safe_serialization=True)
        state = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
        if cfg.tie_word_embeddings:
            state.pop("lm_head.weight", None)
        arch = {"gemma3_text": "gemma3"}.get(cfg.model_type, cfg.model_type)  # llama.cpp's name of the HF type
        with_gguf = arch != "mistral"
        if with_gguf:
            write_gguf(os.path.join(out, "model-f32.gguf"), arch, cfg, state, gguf.GGMLQuantizationType.F32)
            write_gguf(os.path.join(out, "model-q8_0.gguf"), arch, cfg, state, gguf.GGMLQuantizationType.Q8_0)

        meta = {"sequences": SEQUENCES, "vocab_size": VOCAB, "hidden_size": cfg.hidden_size,
                "n_layers": cfg.num_hidden_layers, "capture_sequence": 0}
        for s, ids in enumerate(SEQUENCES):
            logits, dumps = run_oracle(model, ids, capture=(s == 0))
            write_f32(os.path.join(out, f"logits_{s}.f32"), logits)
            for key, t in dumps.items():
                write_f32(os.path.join(out, f"{key}.f32"), t)
        if seed is not None:
            off = copy.deepcopy(model)
            with torch.no_grad():
                off.model.layers[-1].self_attn.o_proj.weight.zero_()
            write_f32(os.path.join(out, "logits_last_attn_off_0.f32"), run_oracle(off, SEQUENCES[0])[0])
        if with_gguf:
            q8 = q8_roundtrip(state)
            with torch.no_grad():
                sd = model.state_dict()
                for k in sd:
                    src = q8.get(k, q8.get("model.embed_tokens.weight") if k == "lm_head.weight" else None)
                    sd[k].copy_(torch.from_numpy(src))
            for s, ids in enumerate(SEQUENCES):
                logits, _ = run_oracle(model, ids)
                write_f32(os.path.join(out, f"logits_q8_0_{s}.f32"), logits)
        with open(os.path.join(out, "oracle.json"), "w") as f:
            json.dump(meta, f, indent=1)
        print(name, sorted(os.listdir(out)))


if __name__ == "__main__":
    main()
