"""The Python package r2gen (bindings/python) against the tiny end-to-end fixture.

Every study of tests/data/r2gen-tiny/expected.json must give the reference's report and token
ids exactly, whichever way its images are handed over (paths, encoded bytes, numpy pixels).
"""

import ctypes
import sys
import threading
import types

import numpy as np
import pytest

from bindings_fixtures import (EXPECTED, GREEDY_STUDY, STUDIES, SWIN_TINY, TINY, image_paths,
                               model_path, open_model, r2gen, read_png,
                               view_as_array_or_bytes)

assert open_model  # a fixture: used by name in the tests below

FEATURE_TOLERANCE = 1e-4  # f32 weights: tests/data/r2gen-tiny/README.md


def expected_npy(relative):
    return np.load(TINY / relative)


def check_study(model, study, report):
    assert report == study["report"]
    assert model.last_tokens() == study["new_tokens"]


# ---- library, structs ----

def test_version():
    assert r2gen.version().split()[0].count(".") == 2


def test_struct_layouts_match_the_header():
    from r2gen import _capi
    lib = _capi.lib()  # raises when a struct_size differs from the ctypes mirror
    for struct, default in _capi.SIZED_STRUCTS.items():
        assert getattr(lib, default)().struct_size == ctypes.sizeof(struct)
    # Field offsets: the values the header documents must come out in the right fields.
    iu = r2gen.decoding_defaults("iu")
    assert (iu["num_beams"], iu["min_new_tokens"], iu["max_new_tokens"]) == (3, 40, 100)
    assert (iu["repetition_penalty"], iu["length_penalty"]) == (2.0, 2.0)
    assert (iu["do_sample"], iu["temperature"], iu["top_k"], iu["top_p"]) == (0, 1.0, 0, 1.0)
    mimic = r2gen.decoding_defaults()
    assert (mimic["min_new_tokens"], mimic["max_new_tokens"]) == (80, 120)
    assert r2gen.decoding_defaults("mimic") == mimic
    with pytest.raises(ValueError):
        r2gen.decoding_defaults("chexpert")


# ---- the fixture's studies, three ways ----

@pytest.mark.parametrize("name", sorted(STUDIES))
def test_study_from_paths(open_model, name):
    study = STUDIES[name]
    model = open_model(study["flavour"])
    paths = image_paths(study)
    views = [str(p) for p in paths] if len(paths) > 1 else paths[0]  # str and PathLike
    check_study(model, study, model.report(views, **study["generate"]))
    assert model.n_views == len(paths)
    embeddings = model.image_embeddings()
    assert embeddings.dtype == np.float32 and embeddings.shape == (49, model.n_embd)
    assert np.abs(embeddings - expected_npy(study["embeddings"])).max() <= FEATURE_TOLERANCE
    for i, features in enumerate(study["view_features"]):
        got = model.view_features(i)
        assert got.shape == (49, 256)
        assert np.abs(got - expected_npy(features)).max() <= FEATURE_TOLERANCE
    assert np.array_equal(model.view_features(-1), model.view_features(len(paths) - 1))
    with pytest.raises(IndexError):
        model.view_features(len(paths))


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_study_from_bytes(open_model, name):
    study = STUDIES[name]
    model = open_model(study["flavour"])
    kinds = [bytes, bytearray, memoryview]
    views = [kinds[i % 3](path.read_bytes()) for i, path in enumerate(image_paths(study))]
    check_study(model, study, model.report(views, **study["generate"]))


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_study_from_numpy(open_model, name):
    study = STUDIES[name]
    model = open_model(study["flavour"])
    views = [view_as_array_or_bytes(path) for path in image_paths(study)]
    assert any(isinstance(v, np.ndarray) for v in views)
    check_study(model, study, model.report(views, **study["generate"]))


# ---- numpy layouts ----

def test_png_reader_matches_the_reference_decode():
    case = SWIN_TINY / "rgb8_311x257"
    assert np.array_equal(read_png(case / "input.png"), np.load(case / "decoded_rgb.npy"))


def features_of(model, image):
    model.clear()
    model.encode(image)
    return model.view_features(0)


def test_numpy_pixels_equal_the_file(open_model):
    model = open_model("shallow")
    case = SWIN_TINY / "rgb8_311x257"
    from_file = features_of(model, case / "input.png")
    assert np.array_equal(features_of(model, np.load(case / "decoded_rgb.npy")), from_file)
    gray16 = SWIN_TINY / "gray16_400x380" / "input.png"
    pixels16 = read_png(gray16)
    assert pixels16.dtype == np.uint16 and pixels16.max() > 255
    assert np.array_equal(features_of(model, pixels16), features_of(model, gray16))


def test_numpy_strided_and_converted_layouts(open_model):
    model = open_model("shallow")
    rgb = read_png(TINY / "images" / "tinted_rgb8.png")
    gray = read_png(TINY / "images" / "frontal_gray8.png")
    gray16 = read_png(SWIN_TINY / "gray16_400x380" / "input.png")
    wide = np.zeros((rgb.shape[0], rgb.shape[1] + 7, 4), np.uint8)
    wide[:, :rgb.shape[1], :3] = rgb
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 200, np.uint8)], axis=2)
    padded_gray = np.zeros((gray.shape[0], gray.shape[1] + 13), np.uint8)
    padded_gray[:, :gray.shape[1]] = gray
    cases = [
        (rgb, wide[:, :rgb.shape[1], :3]),             # padded pixels: copied
        (rgb, rgba),                                   # RGBA, alpha ignored
        (rgb, np.asfortranarray(rgb)),                 # column-major: copied
        (rgb, np.ascontiguousarray(rgb[::-1])[::-1]),  # negative row stride: copied
        (gray, padded_gray[:, :gray.shape[1]]),        # padded rows: passed with their stride
        (gray, gray[:, :, None]),                      # HxWx1
        (gray16, gray16.astype(">u2")),                # big-endian samples
    ]
    for reference, variant in cases:
        assert np.array_equal(features_of(model, variant), features_of(model, reference))
    for bad in (gray.astype(np.float32), gray.astype(bool), np.zeros((4, 4, 2), np.uint8),
                np.zeros((4, 4, 3), np.uint16), object()):
        with pytest.raises(TypeError):
            model.encode(bad)


class FakePilImage:
    """Stands in for PIL.Image.Image (PIL is optional and may be absent): np.asarray reads it
    through __array_interface__, as it reads a real PIL image."""

    def __init__(self, mode, pixels):
        self.mode, self.pixels = mode, pixels

    @property
    def __array_interface__(self):
        return self.pixels.__array_interface__

    def convert(self, mode):
        assert mode == "RGB"
        return FakePilImage("RGB", np.repeat(self.pixels[:, :, :1], 3, axis=2))


def test_pil_images(open_model, monkeypatch):
    fake = types.ModuleType("PIL.Image")
    fake.Image = FakePilImage
    monkeypatch.setitem(sys.modules, "PIL.Image", fake)
    model = open_model("shallow")
    gray = read_png(TINY / "images" / "frontal_gray8.png")
    gray16 = read_png(SWIN_TINY / "gray16_400x380" / "input.png")
    expected = features_of(model, gray)
    assert np.array_equal(features_of(model, FakePilImage("L", gray)), expected)
    as_la = FakePilImage("LA", np.stack([gray, np.zeros_like(gray)], axis=2))  # via convert
    assert np.array_equal(features_of(model, as_la), expected)
    expected16 = features_of(model, gray16)
    assert np.array_equal(features_of(model, FakePilImage("I", gray16.astype(np.int32))), expected16)
    assert np.array_equal(features_of(model, FakePilImage("I;16", gray16)), expected16)


# ---- generation features ----

def test_cancel_through_progress(open_model):
    study = STUDIES["frontal_shallow_mimic"]
    model = open_model(study["flavour"])
    calls = []

    def progress(step, max_steps):
        calls.append((step, max_steps))
        return step >= 3

    with pytest.raises(r2gen.CancelledError) as caught:
        model.report(str(image_paths(study)[0]), progress=progress, **study["generate"])
    assert caught.value.status == r2gen.Status.CANCELLED
    assert calls[-1][0] == 3 and all(m == calls[0][1] for _, m in calls)
    check_study(model, study, model.generate(**study["generate"]))  # still usable


def test_exception_in_callback_is_reraised(open_model):
    study = STUDIES["frontal_shallow_mimic"]
    model = open_model(study["flavour"])
    model.encode(image_paths(study)[0])

    def progress(step, max_steps):
        raise KeyError("from the callback")

    with pytest.raises(KeyError, match="from the callback"):
        model.generate(progress=progress, **study["generate"])
    with pytest.raises(RuntimeError):  # the context is busy inside its own callback
        model.generate(progress=lambda step, max_steps: model.n_views, **study["generate"])
    check_study(model, study, model.generate(progress=lambda s, m: None, **study["generate"]))


def test_stream_greedy(open_model):
    study = STUDIES[GREEDY_STUDY]
    model = open_model(study["flavour"])
    model.encode(image_paths(study)[0])
    pieces = model.stream(**study["generate"])
    collected = []
    while True:
        try:
            collected.append(next(pieces))
        except StopIteration as stop:
            assert stop.value == study["report"]
            break
    assert len(collected) > 1 and "".join(collected).rstrip() == study["report"]
    assert model.last_tokens() == study["new_tokens"]
    with pytest.raises(ValueError):
        model.stream(num_beams=3)


def test_stream_sampling_and_early_stop(open_model):
    model = open_model("shallow")
    model.encode(TINY / "images" / "frontal_gray8.png")
    sampling = dict(num_beams=1, do_sample=True, seed=1234, top_k=50, top_p=0.9, temperature=1.3,
                    min_new_tokens=20, max_new_tokens=30, repetition_penalty=1.0)
    report = model.generate(**sampling)
    tokens = model.last_tokens()
    assert "".join(model.stream(**sampling)).rstrip() == report
    assert model.last_tokens() == tokens
    assert model.generate(**dict(sampling, seed=99)) != report or model.last_tokens() != tokens
    first = next(iter(model.stream(**sampling)))  # abandoned: the generator is closed
    assert first and report.startswith(first)
    assert model.generate(**sampling) == report


def test_prompt_tokenize_and_embeddings(open_model):
    study = STUDIES[GREEDY_STUDY]
    model = open_model(study["flavour"])
    before, after = ("Human: <Img>", "</Img> Generate a comprehensive and detailed diagnosis "
                     "report for this chest xray image. \nAssistant:")
    assert model.tokenize(before) == EXPECTED["prompt"]["before_ids"]
    assert model.tokenize(after) == EXPECTED["prompt"]["after_ids"]
    assert model.tokenize("") == []
    model.encode(image_paths(study)[0])
    check_study(model, study, model.generate(prompt=before + "<ImageHere>" + after,
                                             **study["generate"]))
    with pytest.raises(r2gen.InvalidArgumentError):
        model.generate(prompt="no marker", **study["generate"])
    sequence = np.concatenate([
        model.token_embeddings([1] + EXPECTED["prompt"]["before_ids"]),
        model.image_embeddings(),
        model.token_embeddings(EXPECTED["prompt"]["after_ids"])])
    check_study(model, study, model.generate_from_embeddings(sequence, **study["generate"]))
    with pytest.raises(ValueError):
        model.generate_from_embeddings(sequence[:, :-1])


# ---- errors, life cycle ----

def test_errors(open_model, tmp_path):
    model = open_model("shallow")
    with pytest.raises(r2gen.R2GenError) as caught:
        model.encode(tmp_path / "missing.png")
    assert caught.value.status in (r2gen.Status.IO, r2gen.Status.IMAGE)
    assert "missing.png" in str(caught.value)
    with pytest.raises(r2gen.ImageError) as caught:
        model.encode(b"not an image at all")
    assert caught.value.status == r2gen.Status.IMAGE and caught.value.message
    with pytest.raises(r2gen.NoImageError) as caught:
        model.generate()
    assert caught.value.status == r2gen.Status.NO_IMAGE
    assert str(caught.value).startswith("R2GEN_ERR_NO_IMAGE: ")
    with pytest.raises(r2gen.NoImageError):
        model.image_embeddings()
    with pytest.raises(r2gen.InvalidArgumentError):
        model.report(TINY / "images" / "frontal_gray8.png", num_beams=0)
    with pytest.raises(TypeError):
        model.generate(beams=3)
    with pytest.raises(TypeError):
        model.generate(num_beams=1.5)
    with pytest.raises(ValueError):
        model.tokenize("cut\0short")
    with pytest.raises(r2gen.IoError) as caught:
        r2gen.Model(tmp_path / "missing.gguf")
    assert "missing.gguf" in caught.value.message
    bad_model = tmp_path / "bad.gguf"
    bad_model.write_bytes(b"GGUF" + bytes(60))
    with pytest.raises(r2gen.R2GenError) as caught:
        r2gen.Model(bad_model)
    assert caught.value.status in (r2gen.Status.MODEL_FORMAT, r2gen.Status.UNSUPPORTED)


def test_context_manager_closes(open_model):
    with r2gen.Model(model_path("shallow"), threads=1) as model:
        assert not model.closed and model.n_vocab == 512
    assert model.closed
    with pytest.raises(ValueError):
        model.encode(TINY / "images" / "frontal_gray8.png")
    model.close()  # twice is fine


def test_fork_gives_identical_results(open_model):
    studies = [STUDIES[n] for n in ("two_view_shallow_short", "frontal_shallow_mimic")]
    model = open_model("shallow")
    forks = [model.fork() for _ in studies]
    model.close()  # the weights stay while the forks use them
    results = [None] * len(forks)

    def run(i):
        results[i] = (forks[i].report(image_paths(studies[i]), **studies[i]["generate"]),
                      forks[i].last_tokens())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(forks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (report, tokens), study, fork in zip(results, studies, forks):
        assert report == study["report"] and tokens == study["new_tokens"]
        fork.close()
