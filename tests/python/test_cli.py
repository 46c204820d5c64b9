"""r2gen-report, the command-line program: every r2gen-tiny study gives the fixture's token ids
and report through --json, errors are one line on stderr with a non-zero exit, and a run without
--model uses the build's demo model."""
import json
import os
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TINY = os.path.join(HERE, "..", "data", "r2gen-tiny")
CLI = os.environ.get("R2GEN_CLI")
MODELS = os.environ.get("R2GEN_TEST_MODELS")

pytestmark = pytest.mark.skipif(not CLI or not MODELS,
                                reason="R2GEN_CLI and R2GEN_TEST_MODELS are set by ctest")


def studies():
    with open(os.path.join(TINY, "expected.json"), encoding="utf-8") as f:
        return json.load(f)["studies"]


def run(*args):
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("study", studies(), ids=lambda s: s["name"])
def test_study_tokens_and_report(study):
    g = study["generate"]
    model = os.path.join(MODELS, f"r2gen-tiny-{study['flavour']}-f32.gguf")
    result = run("--model", model, "--json", "--threads", "2",
                 "--beams", str(g["num_beams"]), "--min-new", str(g["min_new_tokens"]),
                 "--max-new", str(g["max_new_tokens"]),
                 "--repetition-penalty", repr(g["repetition_penalty"]),
                 "--length-penalty", repr(g["length_penalty"]),
                 *[os.path.join(TINY, image) for image in study["images"]])
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["tokens"] == study["new_tokens"]
    assert out["report"] == study["report"]
    assert set(out["timings"]) == {"image_encode_s", "prefill_s", "decode_s"}
    assert out["peak_rss_mb"] > 0


def test_plain_output_is_the_report():
    study = studies()[2]
    g = study["generate"]
    model = os.path.join(MODELS, f"r2gen-tiny-{study['flavour']}-f32.gguf")
    result = run("--model", model, "--beams", "1", "--min-new", "0", "--max-new",
                 str(g["max_new_tokens"]), "--repetition-penalty", "1.0",
                 os.path.join(TINY, study["images"][0]))
    assert result.returncode == 0, result.stderr
    assert result.stdout == study["report"] + "\n"


def test_errors_are_one_line():
    model = os.path.join(MODELS, "r2gen-tiny-shallow-f32.gguf")
    for args in (["--model", "absent.gguf", "x.png"],
                 ["--model", model, "absent.png"],
                 ["--model", model, "--beams", "many", "x.png"]):
        result = run(*args)
        assert result.returncode != 0
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_demo_without_model():
    result = run("--max-new", "5", "--min-new", "0")
    assert result.returncode == 0, result.stderr
    assert "demo model" in result.stderr and "untrained" in result.stderr
    assert result.stdout.strip()


def test_version():
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("r2gen-report 0.")
