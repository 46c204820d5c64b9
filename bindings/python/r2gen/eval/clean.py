"""R2GenGPT's clean_report (dataset/data_helper.py, taken from R2Gen): how a raw report becomes
the lower-case reference text "sentence . sentence ." that the metrics compare against.

The steps, in R2GenGPT's order: fix repeated dots and list numbering, strip, lower-case, split
at ". ", then per sentence drop quotes, slashes, backslashes and apostrophes, strip, lower-case
and delete punctuation, and join the sentences with " . " plus a final " .". Empty sentences are
kept (R2GenGPT compares each cleaned sentence with [], which a string never equals), so "a. . b"
keeps an empty sentence between "a" and "b".
"""

import re

DATASETS = ("iu_xray", "mimic_cxr")

# Punctuation deleted inside sentences. R2GenGPT's IU-Xray pattern holds ":-\[", a character
# range from ":" to "[", which also deletes ; < = > ? @ and the capitals (already lower-cased).
_IU_PUNCTUATION = re.compile(r"[.,?;*!%^&_+():-\[\]{}]")
_MIMIC_PUNCTUATION = re.compile(r"[.,?;*!%^&_+()\[\]{}]")

# List numbering "1. ", " 2. " ... " 5. " inside a report, in R2GenGPT's replacement order.
_NUMBERING = (("1. ", ""), (". 2. ", ". "), (". 3. ", ". "), (". 4. ", ". "), (". 5. ", ". "),
              (" 2. ", ". "), (" 3. ", ". "), (" 4. ", ". "), (" 5. ", ". "))


def clean_report(report, dataset):
    """The report cleaned as R2GenGPT cleans references for `dataset` ("iu_xray"; anything else
    is cleaned as MIMIC-CXR, as R2GenGPT does)."""
    if dataset == "iu_xray":
        text = _replace_repeatedly(report, "..", ".", 3)
        punctuation = _IU_PUNCTUATION
    else:
        text = report.replace("\n", " ")
        text = _replace_repeatedly(text, "__", "_", 7)
        text = _replace_repeatedly(text, "  ", " ", 6)
        text = _replace_repeatedly(text, "..", ".", 8)
        punctuation = _MIMIC_PUNCTUATION
    for old, new in _NUMBERING:
        text = text.replace(old, new)
    if dataset != "iu_xray":
        text = text.replace(":", " :")  # MIMIC keeps colons, as separate words
    sentences = text.strip().lower().split(". ")
    cleaned = [_clean_sentence(sentence, punctuation) for sentence in sentences]
    return " . ".join(cleaned) + " ."


def _replace_repeatedly(text, old, new, times):
    """str.replace applied `times` times in a row: each pass shrinks runs like "...." only so
    far, which is why R2GenGPT chains a fixed number of them."""
    for _ in range(times):
        text = text.replace(old, new)
    return text


def _clean_sentence(sentence, punctuation):
    for quote in ('"', "/", "\\", "'"):
        sentence = sentence.replace(quote, "")
    return punctuation.sub("", sentence.strip().lower())
