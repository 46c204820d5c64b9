/* The Llama-2 tokenizer: SentencePiece BPE with byte fallback, wrapped the way the slow
 * LlamaTokenizer of transformers 4.30.2 wraps it (special-token split on encode, its own decode
 * rules), plus R2GenGPT's report clean-up. The vocabulary comes from the GGUF keys
 * tokenizer.ggml.*.
 *
 * Encoding (tokenizer_encode), step by step:
 * 1. The text is split at every literal occurrence of the texts of the unknown, BOS and EOS tokens
 *    ("<unk>", "<s>", "</s>"); each occurrence gives that token's id, nothing around it is
 *    stripped, and every piece between them is encoded on its own (each gets its own dummy
 *    prefix).
 * 2. A piece is normalised: "▁" (U+2581) in front, every U+0020 replaced by "▁", nothing else
 *    changed. Invalid UTF-8 bytes become U+FFFD, one per byte, exactly as SentencePiece's
 *    normaliser does; that character is then encoded like any other (Llama-2 has the pieces "�"
 *    30140 and "��" 26308). The input is not lost in silence, but it is not kept either: decode
 *    shows U+FFFD there. Embedded NULs are ordinary characters (byte token <0x00>).
 * 3. BPE over characters: repeatedly merge the adjacent pair whose concatenation is the
 *    highest-scoring NORMAL piece, leftmost first on equal scores (SentencePiece's bpe_model.cc).
 * 4. A final symbol that is not a piece becomes the byte tokens of its UTF-8 bytes.
 * No BOS is added.
 *
 * Vocabulary requirements (checked by tokenizer_load / tokenizer_create): all 256 byte tokens
 * "<0xXX>" present (byte fallback); pieces non-empty, valid UTF-8 and distinct; the unknown/BOS/EOS
 * ids name unknown or control tokens. Type 4 (user defined) is rejected as unsupported (Llama-2
 * has none; SentencePiece matches them before BPE). Type 5 (unused) pieces are what converters
 * append to pad a vocabulary to the embedding's rows ("[PAD32000]"): encode never produces them
 * and decode shows their text. (SentencePiece would merge into its own unused pieces and then split
 * them again; Llama-2 has none, so that is not implemented.) */
#ifndef R2GEN_TEXT_TOKENIZER_H
#define R2GEN_TEXT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/gguf.h"

/* tokenizer.ggml.token_type values (SentencePiece's piece types + 1). */
enum {
    TOKEN_NORMAL = 1,
    TOKEN_UNKNOWN = 2,
    TOKEN_CONTROL = 3,
    TOKEN_USER_DEFINED = 4,
    TOKEN_UNUSED = 5,
    TOKEN_BYTE = 6,
};

typedef struct tokenizer tokenizer;

/* A vocabulary as arrays: what tokenizer_load reads from a GGUF file, or a test builds by hand. */
typedef struct tokenizer_vocab {
    size_t n_vocab;
    const char *const *pieces; /* not NUL-terminated: piece_lens gives each length */
    const size_t *piece_lens;
    const float *scores;
    const int32_t *types;
    int32_t unk_id, bos_id, eos_id, pad_id;
} tokenizer_vocab;

/* Read tokenizer.ggml.tokens / scores / token_type and the four special ids (defaults when absent,
 * as in Llama-2 and R2GenGPT: unk 0, bos 1, eos 2, pad 0) and build the tokenizer. Fails with
 * R2GEN_ERR_MODEL_FORMAT naming the key or token that is wrong. */
r2gen_status tokenizer_load(const gguf_file *file, tokenizer **out, error *err);
/* The same from arrays (copied: the caller's arrays may go away afterwards). */
r2gen_status tokenizer_create(const tokenizer_vocab *vocab, tokenizer **out, error *err);
void tokenizer_free(tokenizer *tok);

int32_t tokenizer_n_vocab(const tokenizer *tok);
int32_t tokenizer_bos_id(const tokenizer *tok);
int32_t tokenizer_eos_id(const tokenizer *tok);
int32_t tokenizer_unk_id(const tokenizer *tok);
int32_t tokenizer_pad_id(const tokenizer *tok);

/* Encode text[0..len) (any bytes; see the top of this file). *ids is a new array the caller frees
 * (NULL when *n_ids is 0). */
r2gen_status tokenizer_encode(const tokenizer *tok, const char *text, size_t len, int32_t **ids,
                              size_t *n_ids, error *err);

/* transformers 4.30.2 `tokenizer.decode(ids)` (special tokens kept, no clean-up): ids are decoded
 * in runs separated by the unknown/BOS/EOS tokens, which appear as their text; a run drops one
 * leading space; a special token that follows ordinary tokens (not at index 0) puts one " " before
 * the run it closes. Byte tokens that do not form valid UTF-8 give U+FFFD per bad byte. Other
 * control tokens decode to nothing. *text is a new NUL-terminated string the caller frees (the byte
 * token <0x00> puts a NUL inside it).
 * Fails with R2GEN_ERR_INVALID_ARGUMENT for an id outside the vocabulary. */
r2gen_status tokenizer_decode(const tokenizer *tok, const int32_t *ids, size_t n, char **text,
                              error *err);

/* R2GenGPT's decode() of generated ids: drop a leading 0, then a leading 1 (R2GenGPT tests these
 * literal ids), tokenizer_decode, keep what precedes the first "</s>", strip whitespace at both
 * ends as Python's str.strip() does, and remove every "<unk>". str.strip() removes the characters
 * Python calls whitespace: U+0009-000D, U+001C-001F, U+0020, U+0085, U+00A0, U+1680,
 * U+2000-200A, U+2028, U+2029, U+202F, U+205F, U+3000 (not U+200B nor U+FEFF). */
r2gen_status tokenizer_decode_report(const tokenizer *tok, const int32_t *ids, size_t n,
                                     char **text, error *err);

/* The text one token contributes when streaming: a normal piece with every "▁" as a space, a byte
 * token as its single raw byte (possibly part of a UTF-8 character: a streamer holds bytes back
 * until a character is complete), and nothing for control and unknown tokens (R2GenGPT's report
 * never shows them). Not NUL-terminated; *len gets the length. NULL for an id outside the
 * vocabulary.
 *
 * Streaming rule (what a token callback shows for generated ids): skip whitespace until the first
 * visible character (this drops the first piece's leading space, as decode does, and the rest of
 * what str.strip() removes), stop at EOS, and hold trailing whitespace back until something visible
 * follows. That shows exactly tokenizer_decode_report's text, except after an <unk> in the middle
 * of a report: HF's decode then starts a new run (dropping that run's leading space) and, if EOS or
 * another <unk> follows later, puts a " " before the run, which a streamer cannot know in advance;
 * there the two can differ by one space, and the final report is the one to keep. */
const char *tokenizer_piece(const tokenizer *tok, int32_t id, size_t *len);

/* The vocabulary entry of a token ("▁The", "<0x0A>", "</s>"), as HF's convert_ids_to_tokens gives
 * it. Not NUL-terminated; NULL for an id outside the vocabulary. */
const char *tokenizer_token_text(const tokenizer *tok, int32_t id, size_t *len);

#endif
