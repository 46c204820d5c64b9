"""python3 -m r2gen.batch on an annotation of r2gen-tiny studies (the fixture images as views):
each study's report is r2gen-report's; the files are R2GenGPT's layout with cleaned references and
r2gen.eval's metrics; a run on a Dask LocalCluster (loopback), one that loses a worker mid-run
and a killed run resumed all give the same files, with every study in the journal exactly once."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "bindings" / "python"
IMAGES = ROOT / "tests" / "data" / "r2gen-tiny" / "images"
CLI = os.environ.get("R2GEN_CLI")
MODELS = os.environ.get("R2GEN_TEST_MODELS")

if not (os.environ.get("R2GEN_LIBRARY") and CLI and MODELS):
    pytest.skip("R2GEN_LIBRARY, R2GEN_CLI and R2GEN_TEST_MODELS are set by ctest",
                allow_module_level=True)

sys.path.insert(0, str(PACKAGE))
from r2gen import eval as r2eval  # noqa: E402

MODEL = Path(MODELS) / "r2gen-tiny-shallow-f32.gguf"
VIEWS = ["frontal_gray8.png", "lateral_gray8.jpg", "tinted_rgb8.png"]
STUDY_VIEWS = [[0], [1], [2], [0, 1], [1, 2], [0, 2], [0, 1, 2], [2, 0]]
REPORTS = ["The heart is normal in size. The mediastinum is unremarkable. The lungs are clear.",
           "1. No acute cardiopulmonary abnormality. 2. Stable XXXX sternotomy..",
           "Heart size within normal limits; no focal airspace (left/right). No pneumothorax!"]
N_STUDIES = 20
OUTPUTS = ["test_result.json", "test_refs.json", "test_metrics.json", "test_item_scores.json"]
TIMEOUT = 120


@pytest.fixture(scope="module")
def annotation(tmp_path_factory):
    studies = [{"id": f"CXR{i}_IM-{i:04d}", "report": REPORTS[i % len(REPORTS)],
                "image_path": [VIEWS[v] for v in STUDY_VIEWS[i % len(STUDY_VIEWS)]],
                "split": "test"} for i in range(N_STUDIES)]
    path = tmp_path_factory.mktemp("annotation") / "annotation.json"
    path.write_text(json.dumps({"train": [], "val": [], "test": studies}))
    return path


def batch_command(annotation, out, *extra):
    return [sys.executable, "-m", "r2gen.batch", "--annotation", str(annotation),
            "--images", str(IMAGES), "--model", str(MODEL), "--preset", "iu", "--out", str(out),
            "--threads", "1", *extra]


def batch_env():
    return dict(os.environ, PYTHONPATH=str(PACKAGE))


def run_batch(annotation, out, *extra):
    return subprocess.run(batch_command(annotation, out, *extra), env=batch_env(),
                          capture_output=True, text=True, timeout=TIMEOUT)


def start_batch(annotation, out, *extra):
    return subprocess.Popen(batch_command(annotation, out, *extra), env=batch_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def journal_ids(out):
    """Ids of the complete study lines of a run's journal (line 1 is the job)."""
    path = Path(out) / "test_journal.jsonl"
    if not path.exists():
        return []
    complete = path.read_bytes().rsplit(b"\n", 1)[0].split(b"\n")[1:]
    return [json.loads(line)["id"] for line in complete]


def wait_for_studies(out, count, process):
    deadline = time.monotonic() + TIMEOUT
    while len(journal_ids(out)) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.005)


def files(out):
    return {name: (Path(out) / name).read_bytes() for name in OUTPUTS}


def assert_every_study_once(out, annotation):
    ids = [study["id"] for study in json.loads(annotation.read_text())["test"]]
    assert sorted(journal_ids(out)) == sorted(ids)


@pytest.fixture(scope="module")
def local_run(annotation, tmp_path_factory):
    """The outputs of one uninterrupted local run: what every other run must reproduce."""
    out = tmp_path_factory.mktemp("local")
    result = run_batch(annotation, out)
    assert result.returncode == 0, result.stderr
    return out, result


def test_local_run_writes_r2gengpts_files(annotation, local_run):
    out, result = local_run
    studies = json.loads(annotation.read_text())["test"]
    hypos = json.loads((out / "test_result.json").read_text())
    refs = json.loads((out / "test_refs.json").read_text())
    assert list(hypos) == list(refs) == [study["id"] for study in studies]
    assert refs == {s["id"]: [r2eval.clean_report(s["report"], "iu_xray")] for s in studies}
    scores, per_item = r2eval.evaluate(refs, hypos)
    assert json.loads((out / "test_metrics.json").read_text()) == scores
    assert json.loads(result.stdout) == scores
    item_scores = json.loads((out / "test_item_scores.json").read_text())
    assert [item_scores[s["id"]]["CIDEr"] for s in studies] == per_item["CIDEr"]
    assert_every_study_once(out, annotation)
    assert re.search(rf"{N_STUDIES}/{N_STUDIES} studies, [0-9.]+ s/study, ETA 0:00:00",
                     result.stderr), result.stderr


def test_reports_are_r2gen_reports(annotation, local_run):
    hypos = json.loads((local_run[0] / "test_result.json").read_text())
    cli_reports = {}
    for study in json.loads(annotation.read_text())["test"]:
        views = tuple(study["image_path"])
        if views not in cli_reports:
            cli = subprocess.run([CLI, "--model", str(MODEL), "--preset", "iu", "--threads", "1",
                                  *[str(IMAGES / view) for view in views]],
                                 capture_output=True, text=True, timeout=TIMEOUT)
            assert cli.returncode == 0, cli.stderr
            cli_reports[views] = cli.stdout[:-1]
        assert hypos[study["id"]] == [cli_reports[views]], study["id"]
    assert len(set(cli_reports.values())) > 1  # the views matter: not one report for all


def test_interrupted_run_resumes_to_the_same_files(annotation, local_run, tmp_path):
    process = start_batch(annotation, tmp_path)
    wait_for_studies(tmp_path, 3, process)
    process.send_signal(signal.SIGKILL)
    process.wait(TIMEOUT)
    saved = journal_ids(tmp_path)
    assert 3 <= len(saved) < N_STUDIES, "the run ended before it was killed"
    assert not (tmp_path / "test_result.json").exists()
    with open(tmp_path / "test_journal.jsonl", "ab") as journal:
        journal.write(b'{"id": "CXR')  # a write the kill cut short
    result = run_batch(annotation, tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"resuming: {len(saved)} of {N_STUDIES} studies already done" in result.stderr
    assert journal_ids(tmp_path)[:len(saved)] == saved
    assert_every_study_once(tmp_path, annotation)
    assert files(tmp_path) == files(local_run[0])
    again = run_batch(annotation, tmp_path)  # nothing left to do: the same files again
    assert again.returncode == 0 and files(tmp_path) == files(local_run[0])


def test_output_folder_of_another_job_is_refused(annotation, local_run):
    result = run_batch(annotation, local_run[0], "--max-new", "7")
    assert result.returncode == 2
    assert "belongs to a different job" in result.stderr


def test_failed_study_is_reported_and_the_others_kept(tmp_path):
    studies = [{"id": "good", "report": "Clear.", "image_path": [VIEWS[0]]},
               {"id": "bad", "report": "Clear.", "image_path": ["absent.png"]}]
    annotation = tmp_path / "annotation.json"
    annotation.write_text(json.dumps({"test": studies}))
    result = run_batch(annotation, tmp_path / "out")
    assert result.returncode == 1
    assert "study bad:" in result.stderr and "absent.png" in result.stderr
    assert journal_ids(tmp_path / "out") == ["good"]
    assert not (tmp_path / "out" / "test_result.json").exists()


def test_meteor_without_jar_stops_before_generating(annotation, tmp_path):
    result = run_batch(annotation, tmp_path, "--meteor-jar", str(tmp_path / "meteor-1.5.jar"))
    assert result.returncode == 2 and "no jar at" in result.stderr
    assert journal_ids(tmp_path) == []


# ---- Dask distributed ----

def distributed_or_skip():
    return pytest.importorskip("distributed", reason="Dask distributed (python3-distributed) "
                                                     "is not installed")


def test_local_cluster_gives_the_same_files(annotation, local_run, tmp_path):
    distributed_or_skip()
    result = run_batch(annotation, tmp_path, "--cluster", "local:2")
    assert result.returncode == 0, result.stderr
    assert_every_study_once(tmp_path, annotation)
    assert files(tmp_path) == files(local_run[0])


def test_killed_worker_loses_no_study(annotation, local_run, tmp_path):
    distributed = distributed_or_skip()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        pids = client.run(os.getpid)
        process = start_batch(annotation, tmp_path, "--scheduler", cluster.scheduler_address)
        wait_for_studies(tmp_path, 2, process)
        victim = next(worker for worker in pids if client.processing()[worker])
        os.kill(pids[victim], signal.SIGKILL)
        killed_at = len(journal_ids(tmp_path))
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, stderr
    assert killed_at < N_STUDIES, "the run ended before a worker was killed"
    assert_every_study_once(tmp_path, annotation)
    assert files(tmp_path) == files(local_run[0])
