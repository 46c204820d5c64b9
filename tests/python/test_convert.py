"""Tests of tools/r2gen_convert.py on the r2gen-tiny and llama-tiny fixtures.

Every converted tensor is compared with an expectation built here independently of the
converter's own tables: HF names are mapped by regular expressions, q/k rows are permuted by an
explicit index formula, bf16 rounding is recomputed from the two neighbouring bf16 values, and
q8_0/q4_0 blocks are re-quantised by a scalar loop that follows ggml's reference code.
"""

import argparse
import json
import math
import os
import pickle
import re
import struct
import subprocess
import sys

import numpy as np
import pytest

from conftest import DATA, ROOT, TorchTensor, Storage, write_raw_pickle_zip, write_torch_zip
import r2gen_convert as conv

TINY = DATA / "r2gen-tiny"
SWIN_DIR = TINY / "swin"
LLAMA_DIR = TINY / "llama"
LLAMA_TINY_DIR = DATA / "llama-tiny"
FLAVOURS = ("shallow", "delta", "deep")
TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0")
TYPE_IDS = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 8, "bf16": 30}
BLOCK = {"f32": 1, "f16": 1, "bf16": 1, "q8_0": 32, "q4_0": 32}
PROMPT_AFTER = ("</Img> Generate a comprehensive and detailed diagnosis report for this chest "
                "xray image. \nAssistant:")


# ---------------------------------------------------------------------------------------------
# Independent expectations
# ---------------------------------------------------------------------------------------------

def load_safetensors(path):
    """Minimal independent safetensors reader (F32 and F16 only: what the fixtures hold)."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = {"F32": "<f4", "F16": "<f2"}[info["dtype"]]
        out[name] = np.frombuffer(raw[8 + n + begin:8 + n + end], dtype=dtype).reshape(info["shape"]).astype(np.float32)
    return out


SWIN_RULES = (
    (r"^embeddings\.patch_embeddings\.projection\.", "patch_embed."),
    (r"^embeddings\.norm\.", "patch_norm."),
    (r"^encoder\.layers\.(\d+)\.downsample\.", r"layers.\1.merge."),
    (r"^encoder\.layers\.(\d+)\.blocks\.(\d+)\.", r"layers.\1.blocks.\2."),
    (r"^layernorm\.", "norm."),
    (r"layernorm_before", "norm1"),
    (r"layernorm_after", "norm2"),
    (r"attention\.self\.query", "attn_q"),
    (r"attention\.self\.key", "attn_k"),
    (r"attention\.self\.value", "attn_v"),
    (r"attention\.output\.dense", "attn_out"),
    (r"attention\.self\.relative_position_bias_table", "rel_pos_bias"),
    (r"intermediate\.dense", "ffn_up"),
    (r"output\.dense", "ffn_down"),
)


def swin_gguf_name(hf_name):
    name = hf_name
    for pattern, repl in SWIN_RULES:
        name = re.sub(pattern, repl, name)
    return "r2gen.vision." + name


def read_checkpoint(flavour):
    return conv.read_torch_zip(str(TINY / f"checkpoint-{flavour}.pth"))


def expected_vision(flavour, lora_scale=None):
    """{gguf name: (float32 array, quantisable)} for one checkpoint flavour."""
    swin = load_safetensors(SWIN_DIR / "model.safetensors")
    ckpt = read_checkpoint(flavour)
    model = {k: v.float32() for k, v in ckpt["model"].items()}
    if flavour == "deep":
        for key, value in model.items():
            if key.startswith("visual_encoder."):
                swin[key[len("visual_encoder."):]] = value
    if flavour == "delta":
        scale = lora_scale or ckpt["config"]["vis_alpha"] / ckpt["config"]["vis_r"]
        prefix = "visual_encoder.base_model.model."
        for key in model:
            if key.endswith(".lora_A.default.weight"):
                stem = key[len(prefix):-len(".lora_A.default.weight")]
                a = model[key]
                b = model[prefix + stem + ".lora_B.default.weight"]
                w = swin[stem + ".weight"]
                delta = (b.astype(np.float64) @ a.astype(np.float64)).astype(np.float32)
                swin[stem + ".weight"] = w + delta * np.float32(scale)
                exact = w.astype(np.float64) + scale * (b.astype(np.float64) @ a.astype(np.float64))
                assert np.max(np.abs(swin[stem + ".weight"] - exact)) < 1e-6
    out = {}
    for hf_name, value in swin.items():
        if hf_name.endswith("projection.weight"):
            value = value.reshape(value.shape[0], -1)
        out[swin_gguf_name(hf_name)] = (value, value.ndim == 2 and "relative_position" not in hf_name)
    out["r2gen.proj.weight"] = (model["llama_proj.weight"], True)
    out["r2gen.proj.bias"] = (model["llama_proj.bias"], False)
    out["r2gen.proj.norm.weight"] = (model["layer_norm.weight"], False)
    out["r2gen.proj.norm.bias"] = (model["layer_norm.bias"], False)
    return out


def meta_rows(w, heads):
    """Meta's interleaved layout by index: row 2i of a head = HF row i, row 2i+1 = HF row i + hd/2."""
    out_dim = w.shape[0]
    hd = out_dim // heads
    order = np.empty(out_dim, dtype=np.int64)
    for h in range(heads):
        for i in range(hd // 2):
            order[h * hd + 2 * i] = h * hd + i
            order[h * hd + 2 * i + 1] = h * hd + hd // 2 + i
    return w[order]


LLAMA_NAMES = {
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def expected_llama(folder, arrays=None):
    """{gguf name: (float32 array, quantisable)}; ``arrays`` replaces model.safetensors."""
    cfg = json.loads((folder / "config.json").read_text())
    heads = cfg["num_attention_heads"]
    heads_kv = cfg.get("num_key_value_heads", heads)
    out = {}
    arrays = load_safetensors(folder / "model.safetensors") if arrays is None else arrays
    for name, value in arrays.items():
        if name.endswith("rotary_emb.inv_freq"):
            continue
        m = re.fullmatch(r"model\.layers\.(\d+)\.(.+)\.weight", name)
        if m:
            gguf = f"blk.{m[1]}.{LLAMA_NAMES[m[2]]}.weight"
            if m[2] == "self_attn.q_proj":
                value = meta_rows(value, heads)
            elif m[2] == "self_attn.k_proj":
                value = meta_rows(value, heads_kv)
        else:
            gguf = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
                    "lm_head.weight": "output.weight"}[name]
        out[gguf] = (value, value.ndim == 2)
    return out


# ---------------------------------------------------------------------------------------------
# Independent scalar encoders (ggml's reference loops, one element at a time)
# ---------------------------------------------------------------------------------------------

def half_bytes(value):
    """struct's 'e' packs a double to binary16 with round-to-nearest-even."""
    return struct.pack("<e", float(value))


def ref_q8_0_block(xs):
    xs = [np.float32(v) for v in xs]
    amax = np.float32(0)
    for v in xs:
        amax = max(amax, np.float32(abs(v)))
    d = np.float32(amax / np.float32(127))
    inv = np.float32(np.float32(1) / d) if d != 0 else np.float32(0)
    qs = []
    for v in xs:
        x0 = float(np.float32(v * inv))
        qs.append(int(math.copysign(math.floor(abs(x0) + 0.5), x0)))  # C roundf
    return half_bytes(d) + struct.pack("<32b", *qs)


def ref_q4_0_block(xs):
    xs = [np.float32(v) for v in xs]
    amax, vmax = np.float32(0), np.float32(0)
    for v in xs:
        if amax < abs(v):
            amax, vmax = np.float32(abs(v)), v
    d = np.float32(vmax / np.float32(-8))
    inv = np.float32(np.float32(1) / d) if d != 0 else np.float32(0)
    qs = []
    for j in range(16):
        lo = min(15, int(np.float32(np.float32(xs[j] * inv) + np.float32(8.5))))  # int() truncates
        hi = min(15, int(np.float32(np.float32(xs[j + 16] * inv) + np.float32(8.5))))
        qs.append(lo | (hi << 4))
    return half_bytes(d) + bytes(qs)


def ref_bf16_bits(x):
    """Nearest bf16 by comparing the two candidates in float64; ties go to the even one."""
    u = np.ascontiguousarray(x, dtype=np.float32).reshape(-1).view(np.uint32)
    low = (u >> 16).astype(np.uint32)
    high = low + 1
    as_f = lambda bits: (bits << 16).view(np.float32).astype(np.float64)  # noqa: E731
    xv = u.view(np.float32).astype(np.float64)
    d_low, d_high = np.abs(xv - as_f(low)), np.abs(as_f(high) - xv)
    pick_high = (d_high < d_low) | ((d_high == d_low) & (low % 2 == 1))
    return np.where(pick_high, high, low).astype(np.uint16)


# ---------------------------------------------------------------------------------------------
# Checking a converted file
# ---------------------------------------------------------------------------------------------

def check_tensor(name, expected, quantisable, got, type_name):
    ggml_type, ne, raw = got
    assert ne == tuple(reversed(expected.shape)), name
    target = type_name if quantisable and ne[0] % BLOCK[type_name] == 0 else "f32"
    assert ggml_type == TYPE_IDS[target], (name, ggml_type, target)
    if target == "f32":
        assert np.array_equal(np.frombuffer(raw, "<f4").reshape(expected.shape), expected), name
    elif target == "f16":
        assert raw == expected.astype("<f2").tobytes(), name
    elif target == "bf16":
        assert np.array_equal(np.frombuffer(raw, "<u2"), ref_bf16_bits(expected)), name
    else:
        check_quantised(name, expected, raw, target)


def check_quantised(name, expected, raw, target):
    values = conv.dequantize(TYPE_IDS[target], tuple(reversed(expected.shape)), raw)
    block_bytes = 34 if target == "q8_0" else 18
    blocks = expected.reshape(-1, 32)
    d = np.abs(np.frombuffer(raw, dtype="<f2")[:: block_bytes // 2].astype(np.float64))
    err = np.abs(values.reshape(-1, 32).astype(np.float64) - blocks)
    fp16_slack = 2.0 ** -11  # the stored d is the fp16 rounding of the d used to quantise
    if target == "q8_0":
        bound = d * (0.5 + 128 * fp16_slack)
    else:
        bound = d * (1.0 + 16 * fp16_slack)
    assert np.all(err <= bound[:, None] + 1e-12), name
    reference = ref_q8_0_block if target == "q8_0" else ref_q4_0_block
    picks = sorted({0, len(blocks) - 1, len(blocks) // 2, len(blocks) // 3})
    for i in picks:
        assert raw[i * block_bytes:(i + 1) * block_bytes] == reference(blocks[i]), (name, i)


def check_all(path, expected, type_name):
    meta, tensors = conv.read_gguf(str(path))
    assert set(tensors) == set(expected)
    for name, (value, quantisable) in expected.items():
        check_tensor(name, value, quantisable, tensors[name], type_name)
    return meta, tensors


@pytest.fixture(scope="module")
def expectations():
    """Expected tensors per source, built once per module (they are reused by many cases)."""
    cache = {f: expected_vision(f) for f in FLAVOURS}
    cache["llama"] = expected_llama(LLAMA_DIR)
    return cache


# ---------------------------------------------------------------------------------------------
# Conversions
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("type_name", TYPES)
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_vision_only(tmp_path, run_convert, expectations, flavour, type_name):
    out = tmp_path / "vision.gguf"
    status, err = run_convert("--swin", SWIN_DIR, "--checkpoint", TINY / f"checkpoint-{flavour}.pth",
                              "--out", out, "--type", type_name)
    assert status == 0, err
    meta, _ = check_all(out, expectations[flavour], type_name)
    assert meta["general.architecture"] == "r2gen"
    assert meta["r2gen.checkpoint.flavour"] == flavour
    assert not any(k.startswith(("llama.", "tokenizer.")) for k in meta)


@pytest.mark.parametrize("type_name", TYPES)
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_combined(tmp_path, run_convert, expectations, flavour, type_name):
    out = tmp_path / "all.gguf"
    status, err = run_convert("--swin", SWIN_DIR, "--checkpoint", TINY / f"checkpoint-{flavour}.pth",
                              "--llama", LLAMA_DIR, "--out", out, "--type", type_name)
    assert status == 0, err
    meta, _ = check_all(out, {**expectations[flavour], **expectations["llama"]}, type_name)
    assert meta["general.architecture"] == "llama"
    assert meta["r2gen.checkpoint.flavour"] == flavour
    assert meta["llama.embedding_length"] == meta["r2gen.proj.n_embd"] == 64
    assert len(meta["tokenizer.ggml.tokens"]) == 512


@pytest.mark.parametrize("type_name", TYPES)
def test_llama_only(tmp_path, run_convert, expectations, type_name):
    out = tmp_path / "llama.gguf"
    status, err = run_convert("--llama", LLAMA_DIR, "--out", out, "--type", type_name)
    assert status == 0, err
    meta, _ = check_all(out, expectations["llama"], type_name)
    assert meta["general.architecture"] == "llama"
    assert not any(k.startswith("r2gen.") for k in meta)


def test_llama_tiny_f16_source(tmp_path, run_convert):
    """llama-tiny: F16 embedding/lm_head read exactly, inv_freq buffers skipped, q/k permuted."""
    out = tmp_path / "llama-tiny.gguf"
    status, err = run_convert("--llama", LLAMA_TINY_DIR, "--no-tokenizer", "--out", out)
    assert status == 0, err
    meta, _ = check_all(out, expected_llama(LLAMA_TINY_DIR), "f32")
    assert meta["llama.context_length"] == 512
    assert meta["llama.rope.dimension_count"] == 16
    assert meta["llama.attention.head_count_kv"] == 4
    assert not any(k.startswith("tokenizer.") for k in meta)


def test_llama_without_tokenizer_is_an_error(tmp_path, run_convert):
    status, err = run_convert("--llama", LLAMA_TINY_DIR, "--out", tmp_path / "x.gguf")
    assert status == 1 and "tokenizer" in err
    assert not (tmp_path / "x.gguf").exists()


def test_lora_flags_override_config(tmp_path, run_convert):
    out = tmp_path / "delta.gguf"
    status, err = run_convert("--swin", SWIN_DIR, "--checkpoint", TINY / "checkpoint-delta.pth",
                              "--out", out, "--lora-alpha", 16, "--lora-r", 4)
    assert status == 0, err
    check_all(out, expected_vision("delta", lora_scale=4.0), "f32")


def test_deep_and_delta_change_the_swin_weights(expectations):
    """Guards the fixtures themselves: each flavour really changes attn_q of some block."""
    name = "r2gen.vision.layers.0.blocks.0.attn_q.weight"
    shallow = expectations["shallow"][name][0]
    assert not np.array_equal(shallow, expectations["delta"][name][0])
    assert not np.array_equal(shallow, expectations["deep"][name][0])
    key_name = "r2gen.vision.layers.0.blocks.0.attn_k.weight"
    assert np.array_equal(expectations["shallow"][key_name][0], expectations["delta"][key_name][0])


# ---------------------------------------------------------------------------------------------
# Metadata
# ---------------------------------------------------------------------------------------------

def test_vision_metadata(tmp_path, run_convert):
    out = tmp_path / "v.gguf"
    assert run_convert("--swin", SWIN_DIR, "--checkpoint", TINY / "checkpoint-shallow.pth", "--out", out)[0] == 0
    meta, _ = conv.read_gguf(str(out), with_types=True)
    u32, f32, string, array = 4, 6, 8, 9
    expected = {
        "general.alignment": (u32, 32),
        "r2gen.vision.image_size": (u32, 224),
        "r2gen.vision.patch_size": (u32, 4),
        "r2gen.vision.num_channels": (u32, 3),
        "r2gen.vision.embed_dim": (u32, 32),
        "r2gen.vision.depths": (array, [2, 2, 2, 2]),
        "r2gen.vision.num_heads": (array, [1, 2, 4, 8]),
        "r2gen.vision.window_size": (u32, 7),
        "r2gen.vision.mlp_ratio": (f32, 4.0),
        "r2gen.vision.num_features": (u32, 256),
        "r2gen.proj.n_embd": (u32, 64),
        "r2gen.prompt.before": (string, "Human: <Img>"),
        "r2gen.prompt.after": (string, PROMPT_AFTER),
        "r2gen.checkpoint.flavour": (string, "shallow"),
        "r2gen.llm.name": (string, "Llama-2-7b-chat"),
        "general.architecture": (string, "r2gen"),
    }
    for key, value in expected.items():
        assert meta[key] == value, key
    assert meta["r2gen.vision.layer_norm_eps"][0] == f32
    assert meta["r2gen.vision.layer_norm_eps"][1] == pytest.approx(1e-5, rel=1e-6)
    assert meta["r2gen.proj.layer_norm_eps"][1] == pytest.approx(1e-5, rel=1e-6)
    assert meta["r2gen.vision.image_mean"][1] == pytest.approx([0.485, 0.456, 0.406], rel=1e-6)
    assert meta["r2gen.vision.image_std"][1] == pytest.approx([0.229, 0.224, 0.225], rel=1e-6)


def test_prompt_flags(tmp_path, run_convert):
    out = tmp_path / "v.gguf"
    status, err = run_convert("--swin", SWIN_DIR, "--checkpoint", TINY / "checkpoint-shallow.pth",
                              "--out", out, "--prompt-before", "B:", "--prompt-after", "A:",
                              "--llm-name", "other")
    assert status == 0, err
    meta, _ = conv.read_gguf(str(out))
    assert (meta["r2gen.prompt.before"], meta["r2gen.prompt.after"], meta["r2gen.llm.name"]) == ("B:", "A:", "other")


def check_tokenizer_meta(meta):
    tokens, types, scores = (meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"],
                             meta["tokenizer.ggml.scores"])
    assert len(tokens) == len(types) == len(scores) == 512
    assert meta["tokenizer.ggml.model"] == "llama"
    assert tokens[:3] == ["<unk>", "<s>", "</s>"]
    assert types[:3] == [2, 3, 3]
    assert tokens[3:259] == [f"<0x{b:02X}>" for b in range(256)]
    assert types[3:259] == [6] * 256
    assert all(t == 1 for t in types[259:])
    assert (meta["tokenizer.ggml.bos_token_id"], meta["tokenizer.ggml.eos_token_id"],
            meta["tokenizer.ggml.unknown_token_id"], meta["tokenizer.ggml.padding_token_id"]) == (1, 2, 0, 0)


def test_llama_metadata(tmp_path, run_convert):
    out = tmp_path / "l.gguf"
    assert run_convert("--llama", LLAMA_DIR, "--out", out)[0] == 0
    meta, _ = conv.read_gguf(str(out), with_types=True)
    for key, value in {"llama.context_length": 512, "llama.embedding_length": 64, "llama.block_count": 2,
                       "llama.feed_forward_length": 172, "llama.rope.dimension_count": 16,
                       "llama.attention.head_count": 4, "llama.attention.head_count_kv": 4}.items():
        assert meta[key] == (4, value), key
    assert meta["llama.attention.layer_norm_rms_epsilon"][1] == pytest.approx(1e-5, rel=1e-6)
    assert meta["llama.rope.freq_base"] == (6, 10000.0)
    assert meta["tokenizer.ggml.scores"][0] == 9 and meta["tokenizer.ggml.token_type"][0] == 9
    check_tokenizer_meta({k: v for k, (_, v) in meta.items()})


@pytest.mark.parametrize("source", ["tokenizer", "llama"])
def test_vocab_only(tmp_path, run_convert, source):
    out = tmp_path / "vocab.gguf"
    flag = ("--tokenizer", LLAMA_DIR / "tokenizer.model") if source == "tokenizer" else ("--llama", LLAMA_DIR)
    status, err = run_convert(*flag, "--vocab-only", "--out", out)
    assert status == 0, err
    meta, tensors = conv.read_gguf(str(out))
    assert tensors == {}
    assert meta["general.architecture"] == "llama"
    check_tokenizer_meta(meta)
    assert ("llama.block_count" in meta) == (source == "llama")


def test_file_layout(tmp_path, run_convert, expectations):
    """GGUF v3 header, aligned data section and aligned tensor offsets."""
    out = tmp_path / "v.gguf"
    assert run_convert("--swin", SWIN_DIR, "--checkpoint", TINY / "checkpoint-shallow.pth",
                       "--out", out, "--type", "q4_0")[0] == 0
    raw = out.read_bytes()
    assert raw[:4] == b"GGUF"
    version, n_tensors, n_kv = struct.unpack_from("<IQQ", raw, 4)
    assert version == 3 and n_tensors == len(expectations["shallow"])
    reader = conv._GGUFReader(raw)
    reader.pos = 24
    for _ in range(n_kv):
        reader.string()
        reader.value(reader.unpack("<I"))
    offsets = []
    for _ in range(n_tensors):
        reader.string()
        n_dims = reader.unpack("<I")
        reader.unpack(f"<{n_dims}Q")
        offsets.append(reader.unpack("<IQ")[1])
    assert all(o % 32 == 0 for o in offsets)
    data_start = reader.pos + (-reader.pos % 32)
    assert all(b == 0 for b in raw[reader.pos:data_start])
    assert len(raw) >= data_start + offsets[-1]


# ---------------------------------------------------------------------------------------------
# Encoders
# ---------------------------------------------------------------------------------------------

def test_q8_0_rounds_half_away_from_zero():
    block = np.zeros(32, np.float32)
    block[:6] = [127, 2.5, -2.5, 0.5, -0.5, 1.5]  # d = 1 exactly: the halves are exact ties
    q = conv.quantize_q8_0(block)
    assert q["d"][0] == 1.0
    assert list(q["qs"][0][:6]) == [127, 3, -3, 1, -1, 2]
    assert q.tobytes() == ref_q8_0_block(block)


def test_q4_0_semantics():
    block = np.zeros(32, np.float32)
    block[:6] = [-8, 0.5, -0.5, 7.4, 8, 3]  # max by magnitude -8 -> d = 1, id = 1
    q = conv.quantize_q4_0(block)
    assert q["d"][0] == 1.0
    nib = [int(b) & 15 for b in q["qs"][0]]
    assert nib[:6] == [0, 9, 8, 15, 15, 11]
    assert q.tobytes() == ref_q4_0_block(block)
    # the FIRST element of largest magnitude sets the sign of d
    tie = np.zeros(32, np.float32)
    tie[3], tie[7] = 3.0, -3.0
    assert conv.quantize_q4_0(tie)["d"][0] == np.float16(-0.375)
    tie[3], tie[7] = -3.0, 3.0
    assert conv.quantize_q4_0(tie)["d"][0] == np.float16(0.375)
    # an all-zero block stores d = -0.0 and q = 8, as ggml does (0.0f / -8 = -0.0f)
    zero = conv.quantize_q4_0(np.zeros(32, np.float32)).tobytes()
    assert zero == b"\x00\x80" + b"\x88" * 16 == ref_q4_0_block(np.zeros(32, np.float32))


@pytest.mark.parametrize("kind", ["q8_0", "q4_0"])
def test_quantisers_match_scalar_reference(kind):
    rng = np.random.default_rng(7)
    random = rng.standard_normal((150, 32)).astype(np.float32) * rng.uniform(1e-3, 10, (150, 1)).astype(np.float32)
    ties = (rng.integers(-254, 255, (150, 32)) / np.float32(2)).astype(np.float32)  # many exact .5
    ties[:, 0] = 127 if kind == "q8_0" else -8
    tiny = (rng.standard_normal((20, 32)) * 1e-30).astype(np.float32)  # fp16 d underflows
    data = np.concatenate([random, ties, tiny])
    quantise, reference = ((conv.quantize_q8_0, ref_q8_0_block) if kind == "q8_0"
                           else (conv.quantize_q4_0, ref_q4_0_block))
    got = quantise(data)
    for i, block in enumerate(data):
        assert got[i].tobytes() == reference(block), i


def test_bf16_rounding():
    values = np.array([1.0, 1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8, -(1.0 + 2 ** -8), 3.0e38, 1e-40, -0.0],
                      dtype=np.float32)
    bits = conv.float32_to_bf16_bits(values)
    assert list(bits[:4]) == [0x3F80, 0x3F80, 0x3F82, 0xBF80]  # ties to even
    assert np.array_equal(bits, ref_bf16_bits(values))
    nan = np.array([0x7F800001, 0xFFC00000], dtype=np.uint32).view(np.float32)
    assert list(conv.float32_to_bf16_bits(nan)) == [0x7FC0, 0xFFC0]  # quiet bit forced
    rng = np.random.default_rng(3)
    random = rng.standard_normal(10000).astype(np.float32)
    assert np.array_equal(conv.float32_to_bf16_bits(random), ref_bf16_bits(random))


def test_dequantize_known_blocks():
    q8 = half_bytes(0.5) + struct.pack("<32b", *range(-16, 16))
    assert np.array_equal(conv.dequantize(8, (32,), q8), np.arange(-16, 16, dtype=np.float32) * 0.5)
    q4 = half_bytes(2.0) + bytes((j % 16) | (15 - j % 16) << 4 for j in range(16))
    expected = np.array([(j % 16) - 8 for j in range(16)] + [7 - j % 16 for j in range(16)], np.float32) * 2
    assert np.array_equal(conv.dequantize(2, (32,), q4), expected)


# ---------------------------------------------------------------------------------------------
# Torch zip reader and the restricted unpickler
# ---------------------------------------------------------------------------------------------

def test_attribute_dict_config_is_a_plain_dict():
    ckpt = read_checkpoint("delta")
    assert type(ckpt["config"]) is dict
    assert ckpt["config"]["vis_r"] == 4 and ckpt["config"]["vis_alpha"] == 8
    assert ckpt["config"]["llama_model"] == "meta-llama/Llama-2-7b-chat-hf"
    assert ckpt["epoch"] == 3 and ckpt["step"] == 1677


@pytest.mark.parametrize("protocol", [0, 2])
def test_namespace_config_reads_as_dict(tmp_path, protocol):
    payload = pickle.dumps({"config": argparse.Namespace(vis_r=4, vis_alpha=8.0, name="x"),
                            "raw": b"\x00\xffbytes", "set": {1, 2}}, protocol=protocol)
    write_raw_pickle_zip(tmp_path / "ns.pth", payload)
    obj = conv.read_torch_zip(str(tmp_path / "ns.pth"))
    assert type(obj["config"]) is dict
    assert obj["config"] == {"vis_r": 4, "vis_alpha": 8.0, "name": "x"}
    assert obj["raw"] == b"\x00\xffbytes" and obj["set"] == {1, 2}


def test_unknown_class_called_with_a_dict(tmp_path):
    # PROTO 2; GLOBAL 'mypkg.cfg Config'; EMPTY_DICT 'a' 1 SETITEM; TUPLE1; REDUCE; STOP
    payload = b"\x80\x02cmypkg.cfg\nConfig\n}X\x01\x00\x00\x00aK\x01s\x85R."
    write_raw_pickle_zip(tmp_path / "c.pth", payload)
    assert conv.read_torch_zip(str(tmp_path / "c.pth")) == {"a": 1}


def test_tensor_views_and_dtypes(tmp_path):
    shared = Storage("float32", np.arange(20, dtype=np.float32))
    matrix = np.arange(12, dtype=np.float32).reshape(3, 4)
    bf16 = np.array([0x3F80, 0xC000, 0x3FC0], dtype=np.uint16)
    obj = {
        "transposed": TorchTensor(Storage("float32", matrix.reshape(-1)), 0, (4, 3), (1, 4)),
        "offset_strided": TorchTensor(shared, 5, (3,), (2,)),
        "offset_2d": TorchTensor(shared, 2, (2, 3), (6, 1)),
        "half": np.array([0.5, -1.25, 65504], dtype=np.float16),
        "bf16": TorchTensor(Storage("bfloat16", bf16), 0, (3,), (1,)),
        "long": np.array([[1, -2], [3, 4]], dtype=np.int64),
        "scalar": TorchTensor(Storage("float64", np.array([2.5])), 0, (), ()),
    }
    write_torch_zip(tmp_path / "t.pth", obj, top="some-name")
    got = conv.read_torch_zip(str(tmp_path / "t.pth"))
    assert np.array_equal(got["transposed"].array(), matrix.T)
    assert np.array_equal(got["offset_strided"].array(), [5, 7, 9])
    assert np.array_equal(got["offset_2d"].array(), [[2, 3, 4], [8, 9, 10]])
    assert got["half"].dtype == "F16" and np.array_equal(got["half"].float32(), [0.5, -1.25, 65504])
    assert np.array_equal(got["bf16"].float32(), [1.0, -2.0, 1.5])
    assert got["long"].dtype == "I64" and np.array_equal(got["long"].array(), [[1, -2], [3, 4]])
    assert got["scalar"].float32() == np.float32(2.5)


def test_view_past_the_storage_is_refused(tmp_path):
    obj = {"bad": TorchTensor(Storage("float32", np.zeros(4, np.float32)), 2, (3,), (1,))}
    write_torch_zip(tmp_path / "t.pth", obj)
    with pytest.raises(conv.ConvertError, match="past the end"):
        conv.read_torch_zip(str(tmp_path / "t.pth"))


class _SystemPayload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _EvalPayload(_SystemPayload):
    def __reduce__(self):
        import builtins
        return builtins.eval, (f"open({str(self.marker)!r}, 'w').close()",)


class _PopenPayload(_SystemPayload):
    def __reduce__(self):
        return subprocess.Popen, (["touch", str(self.marker)],)


class _GetattrPayload(_SystemPayload):
    def __reduce__(self):
        import builtins
        return builtins.getattr, ("text", "upper")


@pytest.mark.parametrize("payload", [_SystemPayload, _EvalPayload, _PopenPayload, _GetattrPayload])
def test_code_running_pickles_are_refused(tmp_path, run_convert, payload):
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "evil.pth"
    data = pickle.dumps({"model": {}, "config": payload(marker)}, protocol=2)
    write_raw_pickle_zip(ckpt, data)
    with pytest.raises(conv.ConvertError, match="refusing"):
        conv.read_torch_zip(str(ckpt))
    status, err = run_convert("--swin", SWIN_DIR, "--checkpoint", ckpt, "--out", tmp_path / "o.gguf")
    assert status == 1 and "refusing" in err and "Traceback" not in err
    assert not marker.exists()
    assert not (tmp_path / "o.gguf").exists()


def test_lowercase_global_from_unknown_module_is_refused(tmp_path):
    payload = b"\x80\x02cmypkg.helpers\nrun\nX\x02\x00\x00\x00ls\x85R."
    write_raw_pickle_zip(tmp_path / "c.pth", payload)
    with pytest.raises(conv.ConvertError, match="mypkg.helpers.run"):
        conv.read_torch_zip(str(tmp_path / "c.pth"))


# ---------------------------------------------------------------------------------------------
# Command-line errors
# ---------------------------------------------------------------------------------------------

def modified_shallow(tmp_path, change):
    ckpt = read_checkpoint("shallow")
    model = {k: v.float32() for k, v in ckpt["model"].items()}
    change(model)
    path = tmp_path / "modified.pth"
    write_torch_zip(path, {"model": model, "config": ckpt["config"], "epoch": 1})
    return path


def test_missing_checkpoint_key(tmp_path, run_convert):
    path = modified_shallow(tmp_path, lambda m: m.pop("layer_norm.bias"))
    status, err = run_convert("--swin", SWIN_DIR, "--checkpoint", path, "--out", tmp_path / "o.gguf")
    assert status == 1 and "missing keys: layer_norm.bias" in err


def test_unknown_checkpoint_key(tmp_path, run_convert):
    path = modified_shallow(tmp_path, lambda m: m.update({"llama_model.lm_head.weight": np.zeros(3, np.float32)}))
    status, err = run_convert("--swin", SWIN_DIR, "--checkpoint", path, "--out", tmp_path / "o.gguf")
    assert status == 1 and "unknown keys: llama_model.lm_head.weight" in err


def test_unknown_deep_key(tmp_path, run_convert):
    path = modified_shallow(tmp_path, lambda m: m.update({"visual_encoder.encoder.extra.weight": np.zeros(3, np.float32)}))
    status, err = run_convert("--swin", SWIN_DIR, "--checkpoint", path, "--out", tmp_path / "o.gguf")
    assert status == 1 and "visual_encoder.encoder.extra.weight" in err


def test_lora_without_config(tmp_path, run_convert):
    ckpt = read_checkpoint("delta")
    model = {k: v.float32() for k, v in ckpt["model"].items()}
    path = tmp_path / "d.pth"
    write_torch_zip(path, {"model": model, "config": {}})
    status, err = run_convert("--swin", SWIN_DIR, "--checkpoint", path, "--out", tmp_path / "o.gguf")
    assert status == 1 and "--lora-alpha" in err


@pytest.mark.parametrize("argv, message", [
    (["--swin", SWIN_DIR, "--out", "x.gguf"], "--swin and --checkpoint go together"),
    (["--out", "x.gguf"], "nothing to convert"),
    (["--llama", LLAMA_DIR, "--out", "x.gguf", "--type", "q5_0"], "invalid choice"),
    (["--llama", LLAMA_DIR], "--out"),
    (["--swin", SWIN_DIR, "--checkpoint", TINY / "nope.pth", "--out", "x.gguf"], "no such file"),
    (["--vocab-only", "--out", "x.gguf"], "--vocab-only needs"),
    (["--llama", TINY / "nope", "--out", "x.gguf"], "not a folder"),
])
def test_bad_arguments(run_convert, argv, message):
    status, err = run_convert(*argv)
    assert status == 1 and message in err


def test_cli_subprocess_exit_status(tmp_path):
    """The script itself: exit status 1, a one-line error, no traceback."""
    path = modified_shallow(tmp_path, lambda m: m.pop("llama_proj.weight"))
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "r2gen_convert.py"), "--swin", str(SWIN_DIR),
         "--checkpoint", str(path), "--out", str(tmp_path / "o.gguf")],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "llama_proj.weight" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


# ---------------------------------------------------------------------------------------------
# Other source layouts: hub Swin classification checkpoints, sharded / BF16 LLaMA folders
# ---------------------------------------------------------------------------------------------

def write_safetensors(path, tensors):
    """Minimal safetensors writer: {name: (dtype name, numpy array of the stored bits)}."""
    header, blobs, offset = {}, [], 0
    for name, (dtype, array) in sorted(tensors.items()):
        raw = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def hub_swin_folder(tmp_path, index=None):
    """The tiny Swin as a hub classification checkpoint: pytorch_model.bin with ``swin.``
    keys, ``classifier.*`` and int64 relative_position_index buffers."""
    folder = tmp_path / "swin-hub"
    folder.mkdir()
    (folder / "config.json").write_bytes((SWIN_DIR / "config.json").read_bytes())
    state = {"swin." + k: v for k, v in load_safetensors(SWIN_DIR / "model.safetensors").items()}
    state["classifier.weight"] = np.zeros((10, 256), np.float32)
    state["classifier.bias"] = np.zeros(10, np.float32)
    rel = conv.relative_position_index(7) if index is None else index
    for stage in range(4):
        for block in range(2):
            state[f"swin.encoder.layers.{stage}.blocks.{block}.attention.self.relative_position_index"] = rel.astype(np.int64)
    write_torch_zip(folder / "pytorch_model.bin", state, top="pytorch_model")
    return folder


def test_hub_swin_checkpoint(tmp_path, run_convert, expectations):
    folder = hub_swin_folder(tmp_path)
    out = tmp_path / "v.gguf"
    status, err = run_convert("--swin", folder, "--checkpoint", TINY / "checkpoint-delta.pth", "--out", out)
    assert status == 0, err
    check_all(out, expectations["delta"], "f32")


def test_wrong_relative_position_index(tmp_path, run_convert):
    folder = hub_swin_folder(tmp_path, index=conv.relative_position_index(7).T)
    status, err = run_convert("--swin", folder, "--checkpoint", TINY / "checkpoint-shallow.pth",
                              "--out", tmp_path / "v.gguf")
    assert status == 1 and "relative_position_index" in err


def test_sharded_bf16_llama(tmp_path, run_convert):
    """Two safetensors shards + index; one shard stored as BF16, with an inv_freq buffer."""
    folder = tmp_path / "llama-sharded"
    folder.mkdir()
    for name in ("config.json", "tokenizer.model"):
        (folder / name).write_bytes((LLAMA_DIR / name).read_bytes())
    source = load_safetensors(LLAMA_DIR / "model.safetensors")
    names = sorted(source)
    first = {n: ("F32", source[n]) for n in names[:10]}
    second = {n: ("BF16", (source[n].view(np.uint32) >> 16).astype(np.uint16)) for n in names[10:]}
    inv_freq = (1.0 / 10000 ** (np.arange(0, 16, 2, dtype=np.float32) / 16)).astype(np.float32)
    second["model.layers.1.self_attn.rotary_emb.inv_freq"] = ("F32", inv_freq)
    write_safetensors(folder / "model-00001-of-00002.safetensors", first)
    write_safetensors(folder / "model-00002-of-00002.safetensors", second)
    weight_map = {n: "model-00001-of-00002.safetensors" for n in first}
    weight_map.update({n: "model-00002-of-00002.safetensors" for n in second})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    out = tmp_path / "l.gguf"
    status, err = run_convert("--llama", folder, "--out", out)
    assert status == 0, err
    stored = {n: source[n] for n in names[:10]}
    stored.update({n: bf16.astype(np.uint32) << 16 for n, (_, bf16) in second.items() if n in source})
    stored = {n: v.view(np.float32) if v.dtype == np.uint32 else v for n, v in stored.items()}
    check_all(out, expected_llama(LLAMA_DIR, stored), "f32")


def test_checkpoint_buffers_are_checked_and_dropped(tmp_path, run_convert, expectations):
    """A state_dict saved with its buffers still converts as the flavour it is."""
    def add_buffers(model):
        model["visual_encoder.encoder.layers.0.blocks.0.attention.self.relative_position_index"] = \
            conv.relative_position_index(7).astype(np.int64)
        model["llama_model.model.layers.0.self_attn.rotary_emb.inv_freq"] = np.ones(8, np.float32)
    path = modified_shallow(tmp_path, add_buffers)
    out = tmp_path / "v.gguf"
    status, err = run_convert("--swin", SWIN_DIR, "--checkpoint", path, "--out", out)
    assert status == 0, err
    meta, _ = check_all(out, expectations["shallow"], "f32")
    assert meta["r2gen.checkpoint.flavour"] == "shallow"


def test_verbose_progress(tmp_path, run_convert):
    status, err = run_convert("--llama", LLAMA_DIR, "--out", tmp_path / "l.gguf", "--verbose")
    assert status == 0
    assert "[1/21] token_embd.weight" in err and "[21/21] output.weight" in err
    status, err = run_convert("--llama", LLAMA_DIR, "--out", tmp_path / "l.gguf")
    assert "[1/21]" not in err and len(err.splitlines()) == 1
