"""r2gen.eval against the scores R2GenGPT's pycocoevalcap code gave (tests/data/metrics/cases.json):
every corpus, every metric, corpus and per-item values within 1e-9; the reference's failures;
clean_report as R2GenGPT cleans references; METEOR's jar protocol through a stand-in `java`."""

import json
import os
import random
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bindings" / "python"))
from r2gen import eval as r2eval  # noqa: E402  (the package of this tree)
from r2gen.eval._rouge import lcs_length  # noqa: E402

CASES = json.loads((ROOT / "tests" / "data" / "metrics" / "cases.json").read_text())
CORPORA = {corpus["name"]: corpus for corpus in CASES["corpora"]}
SCORERS = {"Bleu": lambda g, r: r2eval.bleu(g, r, 4), "ROUGE_L": r2eval.rouge_l,
           "CIDEr": r2eval.cider_d}
TOLERANCE = 1e-9
# Third-party data (never committed): ../shared/data beside the repository, or $R2GEN_SHARED_DATA.
SHARED_DATA = Path(os.environ.get("R2GEN_SHARED_DATA") or ROOT.parent / "shared" / "data")
IU_CLEANED = SHARED_DATA / "reports" / "iu_xray_test_cleaned.json"
IU_TEST = SHARED_DATA / "reports" / "iu_xray_test.json"


def dicts(corpus):
    """R2GenGPT's (ref, hypo) dicts of a fixture corpus, in its item order."""
    refs = {item["id"]: item["refs"] for item in corpus["items"]}
    hypos = {item["id"]: [item["hyp"]] for item in corpus["items"]}
    return refs, hypos


def scorer_of(metric):
    return SCORERS["Bleu" if metric.startswith("Bleu") else metric]


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_corpus_matches_pycocoevalcap(name):
    corpus = CORPORA[name]
    refs, hypos = dicts(corpus)
    expected_errors = corpus.get("errors", {})
    for metric, message in expected_errors.items():
        kind, _, text = message.partition(": ")
        with pytest.raises(Exception) as raised:
            scorer_of(metric)(refs, hypos)
        assert type(raised.value).__name__ == kind and str(raised.value) == text, metric
    if expected_errors:
        return
    scores, per_item = r2eval.evaluate(refs, hypos)
    for metric, value in corpus["scores"].items():
        if value is None:  # METEOR: not run by the fixture's producer
            assert metric not in scores
            continue
        assert abs(scores[metric] - value) <= TOLERANCE, (metric, scores[metric], value)
        worst = max(abs(a - b) for a, b in zip(per_item[metric], corpus["per_item"][metric]))
        assert len(per_item[metric]) == len(corpus["items"]) and worst <= TOLERANCE, metric


def test_score_is_r2gengpts_dict():
    refs, hypos = dicts(CORPORA["iu_test_50_pairs"])
    scores = r2eval.score(refs, hypos)
    assert list(scores) == ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"]
    assert all(type(value) is float for value in scores.values())
    assert scores == r2eval.evaluate(refs, hypos)[0]


def test_corpus_of_empty_references_fails_as_the_reference_does():
    refs = {"a": [""], "b": [""], "c": ["   "]}
    hypos = {"a": ["the lungs are clear ."], "b": [""], "c": ["x"]}
    with pytest.raises(ValueError, match=r"^max\(\) arg is an empty sequence$"):
        r2eval.score(refs, hypos)
    # ROUGE-L still scores: "" against "" is one empty word matched.
    assert r2eval.rouge_l(refs, hypos)[1] == [0.0, 1.0, 0.0]


@pytest.mark.parametrize("refs, hypos", [
    ({"a": ["x ."]}, {"b": ["x ."]}),            # other ids
    ({"a": ["x ."]}, {"a": ["x .", "y ."]}),     # two hypotheses
    ({"a": ["x ."]}, {"a": "x ."}),              # not a list
    ({"a": []}, {"a": ["x ."]}),                 # no reference
    ({"a": ("x .",)}, {"a": ["x ."]}),           # a tuple is not a list to pycocoevalcap
])
def test_malformed_dicts_fail_every_scorer(refs, hypos):
    for scorer in SCORERS.values():
        with pytest.raises(AssertionError):
            scorer(refs, hypos)


def test_bit_parallel_lcs_equals_the_table():
    rng = random.Random(9)
    for _ in range(300):
        a = [rng.choice("abcd") for _ in range(rng.randrange(0, 70))]
        b = [rng.choice("abcde") for _ in range(rng.randrange(0, 70))]
        table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i, x in enumerate(a):
            for j, y in enumerate(b):
                table[i + 1][j + 1] = (table[i][j] + 1 if x == y
                                       else max(table[i][j + 1], table[i + 1][j]))
        assert lcs_length(a, b) == table[-1][-1] == lcs_length(b, a)


# ---- clean_report ----

@pytest.mark.parametrize("dataset, report, cleaned", [
    # dots, list numbering, the ":"-to-"[" range of the IU pattern (; = ? @ [), slashes
    ("iu_xray", "Heart size normal; BP=120/80 @rest? [sic]. 2. Lungs clear...",
     "heart size normal bp12080 rest sic . lungs clear ."),
    ("iu_xray", "A. . B", "a .  . b ."),  # an empty sentence is kept
    # MIMIC: newlines, "__" and double spaces squeezed, colons kept as words
    ("mimic_cxr", "Findings:\n The heart.. is normal__ size  ok. 1. No effusion (right); 2. A/B",
     "findings : the heart . is normal size ok . no effusion right . ab ."),
    ("mimic_cxr", "IMPRESSION: No change; BP=120.", "impression : no change bp=120 ."),
])
def test_clean_report(dataset, report, cleaned):
    assert r2eval.clean_report(report, dataset) == cleaned


@pytest.mark.skipif(not IU_CLEANED.exists(), reason="the shared IU-Xray reports are absent")
def test_clean_report_gives_the_cleaned_iu_xray_test_split():
    cleaned = json.loads(IU_CLEANED.read_text())
    studies = json.loads(IU_TEST.read_text())["test"]
    assert len(studies) == len(cleaned) == 590
    for study in studies:
        assert r2eval.clean_report(study["report"], "iu_xray") == cleaned[study["id"]], study["id"]


# ---- METEOR ----

def test_meteor_without_jar_or_java_says_why(tmp_path):
    refs, hypos = {"a": ["the lungs are clear ."]}, {"a": ["lungs clear ."]}
    with pytest.raises(r2eval.MeteorUnavailable, match="no jar at .*meteor-1.5.jar"):
        r2eval.score(refs, hypos, meteor_jar=str(tmp_path / "meteor-1.5.jar"))
    jar = tmp_path / "meteor-1.5.jar"
    jar.write_bytes(b"")
    with pytest.raises(r2eval.MeteorUnavailable, match="Java .* not installed"):
        r2eval.score(refs, hypos, meteor_jar=str(jar), java="r2gen-test-no-such-java")
    assert r2eval.meteor_problem(str(jar), java=sys.executable) is None


FAKE_JAVA = """\
#!{python}
# Stands in for `java -jar meteor-1.5.jar - - -stdio -l en -norm`: answers SCORE lines with the
# hypothesis' word count and EVAL lines with count / 10 per item and their sum; logs its input.
import sys
assert sys.argv[1:3] == ["-jar", "-Xmx2G"] and sys.argv[4:] == ["-", "-", "-stdio", "-l", "en",
                                                               "-norm"], sys.argv
log = open({log!r}, "w")
for line in sys.stdin:
    log.write(line)
    log.flush()
    fields = line.rstrip("\\n").split(" ||| ")
    if fields[0] == "SCORE":
        print(len(fields[-1].split()), flush=True)
    else:
        values = [int(stats) / 10 for stats in fields[1:]]
        print("\\n".join(str(v) for v in values + [sum(values)]), flush=True)
"""


def test_meteor_speaks_the_jars_protocol(tmp_path):
    jar = tmp_path / "meteor-1.5.jar"
    jar.write_bytes(b"")
    log = tmp_path / "stdin.log"
    java = tmp_path / "java"
    java.write_text(FAKE_JAVA.format(python=sys.executable, log=str(log)))
    java.chmod(0o755)
    refs = {"a": ["the lungs are clear .", "lungs  clear ."], "b": ["no effusion ."]}
    hypos = {"a": ["the lungs\tare ||| clear ."], "b": ["no  pleural effusion ."]}
    scores, per_item = r2eval.evaluate(refs, hypos, meteor_jar=str(jar), java=str(java))
    assert list(scores) == ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "METEOR", "CIDEr"]
    assert per_item["METEOR"] == [0.5, 0.4] and scores["METEOR"] == 0.9
    assert log.read_text().splitlines() == [
        "SCORE ||| the lungs are clear . ||| lungs clear . ||| the lungs are clear .",
        "SCORE ||| no effusion . ||| no pleural effusion .",
        "EVAL ||| 5 ||| 4"]
    java.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import sys
        sys.stderr.write("Error: Unable to access jarfile\\n")
        sys.exit(1)
        """))
    with pytest.raises(r2eval.MeteorUnavailable, match="jar exited.*Unable to access jarfile"):
        r2eval.score(refs, hypos, meteor_jar=str(jar), java=str(java))
