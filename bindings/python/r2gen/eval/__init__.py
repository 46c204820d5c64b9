"""r2gen.eval: the report metrics of R2GenGPT, computed as its pycocoevalcap scorers compute them.

    from r2gen import eval as r2eval
    refs = {"CXR1_1_IM-0001": ["the heart is normal in size . the lungs are clear ."]}
    hypos = {"CXR1_1_IM-0001": ["the heart size is normal . the lungs are clear ."]}
    r2eval.score(refs, hypos)   # {"Bleu_1": .., "Bleu_4": .., "ROUGE_L": .., "CIDEr": ..}
    r2eval.score(refs, hypos, meteor_jar="meteor-1.5.jar")   # adds "METEOR" (needs Java)

Inputs are R2GenGPT's dicts {id: [text]}: references first (one or more strings per id), then
hypotheses (exactly one string per id). There is no PTB tokenisation, as in R2GenGPT: texts are
compared as given, so clean references with clean_report first. The values equal pycocoevalcap's
(BLEU with option="closest", ROUGE-L, CIDEr-D), and so do the failures: AssertionError for
malformed dicts, ValueError from CIDEr-D when no reference has a word.
"""

from ._bleu import bleu
from ._cider import cider_d
from ._meteor import MeteorUnavailable, meteor, meteor_problem
from ._rouge import rouge_l
from .clean import DATASETS, clean_report

BLEU_NAMES = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4")

__all__ = ["score", "evaluate", "bleu", "rouge_l", "cider_d", "meteor", "meteor_problem",
           "MeteorUnavailable", "clean_report", "DATASETS", "BLEU_NAMES"]


def evaluate(refs, hypos, meteor_jar=None, java="java"):
    """(scores, per_item): the corpus scores as score() gives them, and {metric: [score per id]}
    in the order of refs' ids."""
    scores, per_item = {}, {}
    corpus_bleu, item_bleu = bleu(refs, hypos, 4)
    for name, value, values in zip(BLEU_NAMES, corpus_bleu, item_bleu):
        scores[name], per_item[name] = value, values
    scores["ROUGE_L"], per_item["ROUGE_L"] = rouge_l(refs, hypos)
    if meteor_jar is not None:
        scores["METEOR"], per_item["METEOR"] = meteor(refs, hypos, meteor_jar, java)
    scores["CIDEr"], per_item["CIDEr"] = cider_d(refs, hypos)
    return scores, per_item


def score(refs, hypos, meteor_jar=None, java="java"):
    """R2GenGPT's score(ref, hypo): {"Bleu_1".."Bleu_4", "ROUGE_L", "CIDEr"} of the corpus, plus
    "METEOR" when meteor_jar names the meteor-1.5 jar (MeteorUnavailable if it or Java is
    missing). Metrics run in R2GenGPT's order, so an error stops the call as it stops R2GenGPT."""
    return evaluate(refs, hypos, meteor_jar, java)[0]
