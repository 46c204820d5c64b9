"""CIDEr-D, the "Cider" of pycocoevalcap that R2GenGPT reports as CIDEr.

Each text becomes, per n-gram order 1..4, a tf-idf vector: term count times
(ref_len - log(max(1, df))), where df counts the items whose references hold the n-gram and
ref_len = log(#items) (1 for a one-item corpus). A hypothesis scores against each reference, per
order, the clipped dot product sum(min(h, r) * r) over the norms (when both are non-zero), times a
Gaussian penalty exp(-delta^2 / (2 sigma^2)) where delta is the difference of the two texts'
*bigram* counts (pycocoevalcap counts bigrams there, not words). The item's score is the mean over
orders, divided by the number of references, times 10; the corpus score is the mean over items.
"""

import math

import numpy as np

from ._corpus import items, ngram_counts


def cider_d(gts, res, n=4, sigma=6.0):
    """(corpus CIDEr-D, [CIDEr-D per item]) of gts = {id: [reference, ...]} and
    res = {id: [hypothesis]}. Raises ValueError, as pycocoevalcap does, when no reference in the
    corpus has a word."""
    corpus = [([ngram_counts(ref, n)[1] for ref in refs], ngram_counts(hyp, n)[1])
              for refs, hyp in items(gts, res)]
    document_frequency = {}
    for ref_counts, _ in corpus:
        for gram in {gram for counts in ref_counts for gram in counts}:
            document_frequency[gram] = document_frequency.get(gram, 0) + 1
    if not document_frequency:
        # pycocoevalcap takes max() of the empty frequencies here; keep its exception and text.
        error = ValueError("max() arg is an empty sequence")
        if hasattr(error, "add_note"):
            error.add_note("CIDEr-D: no reference in the corpus has a word, so there is no "
                           "document frequency to weight n-grams with")
        raise error
    ref_len = 1.0 if len(corpus) == 1 else math.log(float(len(corpus)))

    def vector(counts):
        """Per order: {n-gram: tf-idf}, the vector's norm; and the text's bigram count."""
        weights = [{} for _ in range(n)]
        squares = [0.0] * n
        bigrams = 0
        for gram, count in counts.items():
            order = len(gram) - 1
            idf = ref_len - math.log(max(1.0, document_frequency.get(gram, 0)))
            weights[order][gram] = float(count) * idf
            squares[order] += weights[order][gram] ** 2
            if order == 1:
                bigrams += count
        return weights, [math.sqrt(s) for s in squares], bigrams

    per_item = []
    for ref_counts, hyp_count in corpus:
        hyp = vector(hyp_count)
        total = np.zeros(n)
        for counts in ref_counts:
            total += _similarity(hyp, vector(counts), sigma)
        per_item.append(float(np.mean(total) / len(ref_counts) * 10.0))
    return float(np.mean(np.array(per_item))), per_item


def _similarity(hyp, ref, sigma):
    """Per order: the clipped cosine of the hypothesis and one reference, length-penalised."""
    (hyp_weights, hyp_norms, hyp_bigrams), (ref_weights, ref_norms, ref_bigrams) = hyp, ref
    delta = float(hyp_bigrams - ref_bigrams)
    penalty = math.e ** (-(delta ** 2) / (2 * sigma ** 2))
    values = np.zeros(len(hyp_weights))
    for order, weights in enumerate(hyp_weights):
        ref_order = ref_weights[order]
        for gram, weight in weights.items():
            ref_weight = ref_order.get(gram, 0.0)
            values[order] += min(weight, ref_weight) * ref_weight
        if hyp_norms[order] != 0 and ref_norms[order] != 0:
            values[order] /= hyp_norms[order] * ref_norms[order]
        values[order] *= penalty
    return values
