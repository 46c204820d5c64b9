/* generate's decoder interface over a LLaMA session. */
#ifndef R2GEN_GENERATE_LLAMA_DECODER_H
#define R2GEN_GENERATE_LLAMA_DECODER_H

#include "generate/generate.h"
#include "llama/llama.h"

/* A decoder that drives s (created for model m with max_rows >= num_beams and max_positions >=
 * prompt positions + max_new_tokens). s must outlive the decoder's use. */
decoder llama_decoder(llama_session *s, const llama_model *m);

#endif
