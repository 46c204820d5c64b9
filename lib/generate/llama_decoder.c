#include "generate/llama_decoder.h"

static r2gen_status prefill(void *self, const compute *cpu, const float *embeddings,
                            int n_positions, float *logits, error *err)
{
    return llama_prefill(self, cpu, embeddings, n_positions, logits, NULL, err);
}

static r2gen_status decode(void *self, const compute *cpu, const int32_t *tokens,
                           const int32_t *parent_rows, int n_rows, float *logits, error *err)
{
    return llama_decode(self, cpu, tokens, parent_rows, n_rows, logits, err);
}

decoder llama_decoder(llama_session *s, const llama_model *m)
{
    return (decoder){.self = s, .n_vocab = llama_get_config(m)->n_vocab, .prefill = prefill,
                     .decode = decode};
}
