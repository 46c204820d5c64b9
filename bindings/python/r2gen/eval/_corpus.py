"""What every scorer does first: check the {id: [text]} dicts as pycocoevalcap does, and count
n-grams of whitespace-split words (BLEU and CIDEr-D share that tokenisation)."""


def items(gts, res):
    """(refs, hyp) pairs in the order of gts' ids, after pycocoevalcap's sanity checks: the same
    ids on both sides, a list of exactly one hypothesis and a non-empty list of references per id.
    The reference scorers fail those checks with a bare AssertionError; so do these, with a
    message saying which check failed."""
    if gts.keys() != res.keys():
        raise AssertionError("references and hypotheses must have the same ids")
    pairs = []
    for key in gts:
        hypo, refs = res[key], gts[key]
        if type(hypo) is not list or len(hypo) != 1:
            raise AssertionError(f"id {key!r}: the hypothesis must be a list of one string")
        if type(refs) is not list or len(refs) < 1:
            raise AssertionError(f"id {key!r}: the references must be a non-empty list")
        pairs.append((refs, hypo[0]))
    return pairs


def ngram_counts(text, n):
    """{word tuple: count} of the 1..n-grams of text.split(), in the order pycocoevalcap inserts
    them (all unigrams, then all bigrams, ...), so that sums over them add up in its order."""
    words = text.split()
    counts = {}
    for k in range(1, n + 1):
        for i in range(len(words) - k + 1):
            gram = tuple(words[i:i + k])
            counts[gram] = counts.get(gram, 0) + 1
    return len(words), counts
