"""BLEU-1..n as pycocoevalcap's BleuScorer computes it with option="closest".

Per item: clipped n-gram matches against the maximum count over its references, and the
reference length closest to the hypothesis length (ties go to the shorter one). The corpus score
multiplies precisions of the summed counts; per-item scores use the item's own counts and its own
brevity penalty. Both smooth every precision as (matches + 1e-15) / (guesses + 1e-9), which is
why identical strings score 0.9999999996 and "." against "." gives BLEU-2 = 1e-3.
"""

import math

from ._corpus import items, ngram_counts

TINY = 1e-15   # added to the matches: a zero stays (almost) zero
SMALL = 1e-9   # added to the guesses: no division by zero


def bleu(gts, res, n=4):
    """([BLEU-1..n of the corpus], [[BLEU-k per item] for k in 1..n]) of gts = {id: [reference,
    ...]} and res = {id: [hypothesis]}."""
    corpus_matches, corpus_guesses = [0] * n, [0] * n
    corpus_hyp_len = corpus_ref_len = 0
    per_item = [[] for _ in range(n)]
    for refs, hyp in items(gts, res):
        hyp_len, matches, guesses, ref_len = _item_counts(refs, hyp, n)
        corpus_hyp_len += hyp_len
        corpus_ref_len += ref_len
        for k in range(n):
            corpus_matches[k] += matches[k]
            corpus_guesses[k] += guesses[k]
        for k, value in enumerate(_scores(matches, guesses, hyp_len, ref_len)):
            per_item[k].append(value)
    corpus = _scores(corpus_matches, corpus_guesses, corpus_hyp_len, corpus_ref_len)
    return corpus, per_item


def _item_counts(refs, hyp, n):
    """(hypothesis length, clipped matches per order, hypothesis n-grams per order, effective
    reference length) of one item."""
    ref_lens, ref_max = [], {}
    for ref in refs:
        length, counts = ngram_counts(ref, n)
        ref_lens.append(length)
        for gram, count in counts.items():
            ref_max[gram] = max(ref_max.get(gram, 0), count)
    hyp_len, counts = ngram_counts(hyp, n)
    matches = [0] * n
    for gram, count in counts.items():
        matches[len(gram) - 1] += min(ref_max.get(gram, 0), count)
    guesses = [max(0, hyp_len - k) for k in range(n)]
    ref_len = min(ref_lens, key=lambda length: (abs(length - hyp_len), length))
    return hyp_len, matches, guesses, ref_len


def _scores(matches, guesses, hyp_len, ref_len):
    """BLEU-1..n: running products of smoothed precisions (k-th root), times the brevity
    penalty when the hypothesis is shorter than the reference."""
    scores, product = [], 1.0
    for k, (match, guess) in enumerate(zip(matches, guesses)):
        product *= (float(match) + TINY) / (float(guess) + SMALL)
        scores.append(product ** (1.0 / (k + 1)))
    ratio = (hyp_len + TINY) / (ref_len + SMALL)
    if ratio < 1:
        penalty = math.exp(1 - 1 / ratio)
        scores = [value * penalty for value in scores]
    return scores
