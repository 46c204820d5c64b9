#include "generate/sample.h"

#include <math.h>
#include <stdlib.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void rng_seed(rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->state[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rng_next(rng *r)
{
    uint64_t *s = r->state;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double rng_uniform(rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

r2gen_status sampler_init(sampler *s, float temperature, int top_k, float top_p, uint64_t seed,
                          int n_vocab, error *err)
{
    *s = (sampler){.temperature = temperature, .top_k = top_k, .top_p = top_p};
    rng_seed(&s->rng, seed);
    s->pool = malloc((size_t)n_vocab * sizeof(*s->pool));
    if (!s->pool) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "sampler: out of memory");
    return R2GEN_OK;
}

void sampler_free(sampler *s)
{
    free(s->pool);
    s->pool = NULL;
}

/* A total order: the higher score first, the lower token id among equals. */
static int ranks_before(const candidate *a, const candidate *b)
{
    return a->score > b->score || (a->score == b->score && a->index < b->index);
}

static int compare_rank(const void *a, const void *b)
{
    const candidate *x = a, *y = b;
    return ranks_before(x, y) ? -1 : ranks_before(y, x) ? 1 : 0;
}

static void swap_candidates(candidate *a, candidate *b)
{
    candidate t = *a;
    *a = *b;
    *b = t;
}

/* Quickselect: afterwards pool[k - 1] holds the candidate of rank k - 1 and nothing before it
 * ranks below it. O(n) on average. */
static void select_rank(candidate *pool, int n, int k)
{
    int lo = 0, hi = n - 1, target = k - 1;
    while (lo < hi) {
        swap_candidates(&pool[(lo + hi) / 2], &pool[hi]);
        candidate pivot = pool[hi];
        int store = lo;
        for (int i = lo; i < hi; i++)
            if (ranks_before(&pool[i], &pivot)) swap_candidates(&pool[i], &pool[store++]);
        swap_candidates(&pool[store], &pool[hi]);
        if (store == target) return;
        if (store < target)
            lo = store + 1;
        else
            hi = store - 1;
    }
}

/* TopKLogitsWarper: keep every score >= the k-th largest (ties with it stay). */
static int keep_top_k(candidate *pool, int n, int k)
{
    if (k <= 0 || k >= n) return n;
    select_rank(pool, n, k);
    float threshold = pool[k - 1].score;
    int kept = 0;
    for (int i = 0; i < n; i++)
        if (pool[i].score >= threshold) pool[kept++] = pool[i];
    return kept;
}

/* Softmax weights exp(s - max) into score, in place; returns their sum. */
static double softmax_weights(candidate *pool, int n)
{
    float max = pool[0].score;
    for (int i = 1; i < n; i++)
        if (pool[i].score > max) max = pool[i].score;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        pool[i].score = expf(pool[i].score - max);
        sum += pool[i].score;
    }
    return sum;
}

/* TopPLogitsWarper on a pool sorted best first: drop the tail whose cumulative probability
 * (summed from the least likely up, as HF's ascending cumsum) is <= 1 - top_p; the best token
 * always stays. Leaves softmax weights in score. */
static int keep_top_p(candidate *pool, int n, float top_p, double *weight_sum)
{
    double sum = softmax_weights(pool, n);
    float removable = (float)(1.0 - (double)top_p);
    float cumulative = 0.0f;
    int kept = n;
    for (int i = n - 1; i > 0; i--) {
        cumulative += (float)(pool[i].score / sum);
        if (cumulative > removable) break;
        kept = i;
    }
    *weight_sum = 0.0;
    for (int i = 0; i < kept; i++) *weight_sum += pool[i].score;
    return kept;
}

int32_t sampler_pick(sampler *s, float *scores, int n_vocab)
{
    int n = 0;
    for (int i = 0; i < n_vocab; i++) {
        if (s->temperature != 1.0f) scores[i] /= s->temperature;
        if (scores[i] > -INFINITY) s->pool[n++] = (candidate){scores[i], i};
    }
    if (n == 0) return -1;
    n = keep_top_k(s->pool, n, s->top_k);
    double weight_sum;
    if (s->top_p < 1.0f) {
        qsort(s->pool, (size_t)n, sizeof(*s->pool), compare_rank);
        n = keep_top_p(s->pool, n, s->top_p, &weight_sum);
    } else {
        weight_sum = softmax_weights(s->pool, n);
    }
    double target = rng_uniform(&s->rng) * weight_sum;
    double cumulative = 0.0;
    for (int i = 0; i < n; i++) {
        cumulative += s->pool[i].score;
        if (cumulative > target) return (int32_t)s->pool[i].index;
    }
    return (int32_t)s->pool[n - 1].index;
}
