"""Every kind of model file the converter writes loads through the library: the three checkpoint
flavours at every --type; a vision GGUF paired with a separate LLaMA GGUF (llm_path) gives the
same report as the single file; a LLaMA-only GGUF loads in text-only mode, where images are
refused and generate_from_embeddings works."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TINY = os.path.join(HERE, "..", "data", "r2gen-tiny")
CONVERTER = os.path.join(HERE, "..", "..", "tools", "r2gen_convert.py")
sys.path.insert(0, os.path.join(HERE, "..", "..", "bindings", "python"))

pytestmark = pytest.mark.skipif(not os.environ.get("R2GEN_LIBRARY"),
                                reason="R2GEN_LIBRARY is set by ctest")

import r2gen  # noqa: E402  (after the path set-up)


def convert(out, *args):
    subprocess.run([sys.executable, CONVERTER, *args, "--out", str(out)], check=True,
                   capture_output=True)
    return str(out)


def study(name):
    with open(os.path.join(TINY, "expected.json"), encoding="utf-8") as f:
        return next(s for s in json.load(f)["studies"] if s["name"] == name)


def decoding(s):
    return dict(s["generate"])


@pytest.mark.parametrize("flavour", ["shallow", "delta", "deep"])
@pytest.mark.parametrize("weight_type", ["f32", "f16", "bf16", "q8_0", "q4_0"])
def test_every_flavour_and_type_loads_and_reports(tmp_path, flavour, weight_type):
    path = convert(tmp_path / "m.gguf", "--swin", os.path.join(TINY, "swin"),
                   "--checkpoint", os.path.join(TINY, f"checkpoint-{flavour}.pth"),
                   "--llama", os.path.join(TINY, "llama"), "--type", weight_type)
    with r2gen.Model(path, threads=1) as model:
        text = model.report(os.path.join(TINY, "images", "frontal_gray8.png"),
                            num_beams=1, min_new_tokens=0, max_new_tokens=8)
        assert isinstance(text, str)
        assert 1 <= len(model.last_tokens()) <= 8
        assert model.image_embeddings().shape == (49, 64)


def test_vision_file_with_separate_llama_file(tmp_path):
    s = study("two_view_delta_iu")
    vision = convert(tmp_path / "vision.gguf", "--swin", os.path.join(TINY, "swin"),
                     "--checkpoint", os.path.join(TINY, "checkpoint-delta.pth"))
    llama = convert(tmp_path / "llama.gguf", "--llama", os.path.join(TINY, "llama"))
    with r2gen.Model(vision, llm_path=llama, threads=2) as model:
        images = [os.path.join(TINY, image) for image in s["images"]]
        assert model.report(images, **decoding(s)) == s["report"]
        assert model.last_tokens() == s["new_tokens"]


def test_vision_file_alone_names_what_is_missing(tmp_path):
    vision = convert(tmp_path / "vision.gguf", "--swin", os.path.join(TINY, "swin"),
                     "--checkpoint", os.path.join(TINY, "checkpoint-shallow.pth"))
    with pytest.raises(r2gen.R2GenError) as failure:
        r2gen.Model(vision)
    assert failure.value.status == r2gen.Status.MODEL_FORMAT
    assert "llm_path" in str(failure.value)


def test_llama_only_file_is_text_only(tmp_path):
    s = study("frontal_shallow_mimic")
    llama = convert(tmp_path / "llama.gguf", "--llama", os.path.join(TINY, "llama"))
    inputs = np.load(os.path.join(TINY, s["inputs_embeds"]))
    with r2gen.Model(llama, threads=2) as model:
        with pytest.raises(r2gen.R2GenError) as failure:
            model.encode(os.path.join(TINY, "images", "frontal_gray8.png"))
        assert failure.value.status == r2gen.Status.UNSUPPORTED
        assert model.generate_from_embeddings(inputs, **decoding(s)) == s["report"]
        assert model.last_tokens() == s["new_tokens"]


def test_detokenize_inverts_tokenize_and_keeps_special_tokens():
    models = os.environ.get("R2GEN_TEST_MODELS")
    if not models:
        pytest.skip("R2GEN_TEST_MODELS is set by ctest")
    s = study("frontal_shallow_mimic")
    with r2gen.Model(os.path.join(models, "r2gen-tiny-shallow-f32.gguf")) as model:
        ids = model.tokenize("the heart is normal")
        assert model.detokenize(ids) == "the heart is normal"
        assert model.detokenize([1] + ids + [2]) == "<s> the heart is normal</s>"
        # HF puts one space before a run that a special token (here <unk>) closes
        assert model.detokenize(s["new_tokens"]).startswith(" " + s["report"][:10])
        with pytest.raises(r2gen.R2GenError) as failure:
            model.detokenize([model.n_vocab])
        assert failure.value.status == r2gen.Status.INVALID_ARGUMENT
