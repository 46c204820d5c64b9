#include "fake_decoder.h"

#include <stdlib.h>
#include <string.h>

int fake_decoder_init(fake_decoder *f, int n_vocab, int max_rows, int max_steps,
                      fake_script script, void *user)
{
    *f = (fake_decoder){.n_vocab = n_vocab, .max_rows = max_rows, .max_steps = max_steps,
                        .script = script, .user = user};
    size_t n = (size_t)max_rows * max_steps;
    f->history = calloc(n, sizeof(*f->history));
    f->next_history = calloc(n, sizeof(*f->next_history));
    if (f->history && f->next_history) return 0;
    fake_decoder_free(f);
    return -1;
}

void fake_decoder_free(fake_decoder *f)
{
    free(f->history);
    free(f->next_history);
    f->history = f->next_history = NULL;
}

static r2gen_status fake_prefill(void *self, const compute *cpu, const float *embeddings,
                                 int n_positions, float *logits, error *err)
{
    fake_decoder *f = self;
    f->n_prefill++;
    f->n_rows = 0;
    f->n_fed = 0;
    f->script(f->history, 0, logits, f->n_vocab, f->user);
    return R2GEN_OK;
}

static r2gen_status fake_decode(void *self, const compute *cpu, const int32_t *tokens,
                                const int32_t *parent_rows, int n_rows, float *logits,
                                error *err)
{
    fake_decoder *f = self;
    f->n_decode++;
    if (n_rows < 1 || n_rows > f->max_rows || (f->n_rows && n_rows != f->n_rows) ||
        f->n_fed == f->max_steps) {
        f->misuse++;
        return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "fake decoder: bad rows or steps");
    }
    for (int r = 0; r < n_rows; r++) {
        /* Right after the prefill every row continues the (empty) common history. */
        int parent = f->n_rows ? parent_rows[r] : 0;
        if (parent < 0 || parent >= n_rows || tokens[r] < 0 || tokens[r] >= f->n_vocab) {
            f->misuse++;
            return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "fake decoder: bad parent/token");
        }
        int32_t *row = f->next_history + (size_t)r * f->max_steps;
        memcpy(row, f->history + (size_t)parent * f->max_steps, (size_t)f->n_fed * sizeof(*row));
        row[f->n_fed] = tokens[r];
    }
    int32_t *swap = f->history;
    f->history = f->next_history;
    f->next_history = swap;
    f->n_rows = n_rows;
    f->n_fed++;
    for (int r = 0; r < n_rows; r++)
        f->script(f->history + (size_t)r * f->max_steps, f->n_fed,
                  logits + (size_t)r * f->n_vocab, f->n_vocab, f->user);
    return R2GEN_OK;
}

decoder fake_decoder_interface(fake_decoder *f)
{
    return (decoder){.self = f, .n_vocab = f->n_vocab, .prefill = fake_prefill,
                     .decode = fake_decode};
}
