"""ROUGE-L as pycocoevalcap's Rouge computes it.

Words come from text.split(" "): a single space, so double spaces give empty words, a tab or a
newline does not split, and "" is one empty word (empty against empty scores 1). Per item the
best precision and the best recall over the references (each maximised on its own) give
F = (1 + b^2) P R / (R + b^2 P) with b = 1.2; the corpus score is the mean over items.
"""

import numpy as np

from ._corpus import items

BETA = 1.2


def rouge_l(gts, res):
    """(corpus ROUGE-L, [ROUGE-L per item]) of gts = {id: [reference, ...]} and
    res = {id: [hypothesis]}."""
    per_item = [_item_score(refs, hyp) for refs, hyp in items(gts, res)]
    return float(np.mean(np.array(per_item))), per_item


def _item_score(refs, hyp):
    hyp_words = hyp.split(" ")
    precision = recall = 0.0
    for ref in refs:
        ref_words = ref.split(" ")
        common = lcs_length(ref_words, hyp_words)
        precision = max(precision, common / float(len(hyp_words)))
        recall = max(recall, common / float(len(ref_words)))
    if precision == 0 or recall == 0:
        return 0.0
    return ((1 + BETA ** 2) * precision * recall) / float(recall + BETA ** 2 * precision)


def lcs_length(a, b):
    """Length of the longest common subsequence of two word lists, bit-parallel (Hyyro 2004):
    bit i of `unmatched` is 1 while a[i] is not yet part of the best alignment; each word of b
    updates all of a's positions at once with one addition, so the cost is len(b) big-integer
    operations instead of a len(a) x len(b) table in Python."""
    positions = {}
    for i, word in enumerate(a):
        positions[word] = positions.get(word, 0) | (1 << i)
    everything = (1 << len(a)) - 1
    unmatched = everything
    for word in b:
        hits = unmatched & positions.get(word, 0)
        unmatched = ((unmatched + hits) | (unmatched - hits)) & everything
    return len(a) - bin(unmatched).count("1")
