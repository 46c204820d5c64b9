#include "tokenizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* U+2581 LOWER ONE EIGHTH BLOCK: SentencePiece's visible space. */
static const char space_mark[] = "\xE2\x96\x81";
#define SPACE_MARK_LEN 3
/* U+FFFD REPLACEMENT CHARACTER: what an invalid UTF-8 byte becomes. */
static const char replacement_char[] = "\xEF\xBF\xBD";
#define REPLACEMENT_CHAR_LEN 3

/* R2GenGPT's decode() works on these literal strings, not on the vocabulary. */
static const char report_end[] = "</s>";
static const char report_unknown[] = "<unk>";

/* HF splits encode input at, and decode output around, the unknown, BOS and EOS tokens. */
#define MAX_SPECIAL 3

struct tokenizer {
    int32_t n_vocab;
    int32_t unk_id, bos_id, eos_id, pad_id;
    uint8_t *type;
    float *score;
    /* Piece i is text[text_start[i] .. text_start[i + 1]). */
    char *text;
    size_t *text_start;
    /* What token i shows when streamed (tokenizer_piece), laid out the same way. */
    char *surface;
    size_t *surface_start;
    /* Open addressing over every piece (they are distinct): a slot holds a token id or -1. */
    int32_t *slot;
    size_t slot_mask;
    /* Bytes of the longest NORMAL piece: a longer pair cannot merge and is not looked up. */
    size_t max_normal_len;
    /* No NORMAL piece has "▁" after another character (true of Llama-2): see word_end. */
    int words_are_independent;
    int32_t byte_token[256];
    int32_t special[MAX_SPECIAL];
    int n_special;
};

/* ---- small helpers ---- */

static r2gen_status out_of_memory(error *err)
{
    return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
}

/* Make room for `need` elements; returns the (possibly moved) array or NULL, leaving `data` and
 * `*cap` untouched on failure. */
static void *grow(void *data, size_t *cap, size_t need, size_t elem_size)
{
    if (need <= *cap) return data;
    size_t new_cap = *cap ? *cap : 64;
    while (new_cap < need) {
        if (new_cap > SIZE_MAX / 2 / elem_size) return NULL;
        new_cap *= 2;
    }
    void *moved = realloc(data, new_cap * elem_size);
    if (moved) *cap = new_cap;
    return moved;
}

typedef struct text_buf {
    char *data;
    size_t len, cap;
} text_buf;

static r2gen_status text_append(text_buf *buf, const char *bytes, size_t n, error *err)
{
    /* +1 keeps room for the terminating NUL the callers add at the end. */
    char *data = grow(buf->data, &buf->cap, buf->len + n + 1, 1);
    if (!data) return out_of_memory(err);
    buf->data = data;
    memcpy(buf->data + buf->len, bytes, n);
    buf->len += n;
    return R2GEN_OK;
}

typedef struct id_buf {
    int32_t *data;
    size_t len, cap;
} id_buf;

static r2gen_status id_append(id_buf *buf, int32_t id, error *err)
{
    int32_t *data = grow(buf->data, &buf->cap, buf->len + 1, sizeof *data);
    if (!data) return out_of_memory(err);
    buf->data = data;
    buf->data[buf->len++] = id;
    return R2GEN_OK;
}

/* Length of the UTF-8 character at s (1-4) and its code point, or 0 if the bytes there are not
 * one: SentencePiece's DecodeUTF8 rules (no overlong forms, no surrogates, nothing above
 * U+10FFFF, a sequence cut short by `avail` is invalid). */
static size_t utf8_char(const unsigned char *s, size_t avail, uint32_t *code_point)
{
    static const uint32_t smallest[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t n;
    uint32_t c;
    if (s[0] < 0x80) {
        *code_point = s[0];
        return 1;
    }
    if ((s[0] & 0xE0) == 0xC0) {
        n = 2;
        c = s[0] & 0x1Fu;
    } else if ((s[0] & 0xF0) == 0xE0) {
        n = 3;
        c = s[0] & 0x0Fu;
    } else if ((s[0] & 0xF8) == 0xF0) {
        n = 4;
        c = s[0] & 0x07u;
    } else {
        return 0;
    }
    if (avail < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3Fu);
    }
    if (c < smallest[n] || c > 0x10FFFF || (c >= 0xD800 && c < 0xE000)) return 0;
    *code_point = c;
    return n;
}

static int valid_utf8(const char *s, size_t n)
{
    uint32_t c;
    for (size_t at = 0; at < n;) {
        size_t k = utf8_char((const unsigned char *)s + at, n - at, &c);
        if (k == 0) return 0;
        at += k;
    }
    return 1;
}

/* FNV-1a. */
static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static const char *piece_of(const tokenizer *tok, int32_t id, size_t *len)
{
    *len = tok->text_start[id + 1] - tok->text_start[id];
    return tok->text + tok->text_start[id];
}

/* The slot holding piece s, or the empty slot where it would go. */
static size_t find_slot(const tokenizer *tok, const char *s, size_t n)
{
    size_t i = (size_t)hash_bytes(s, n) & tok->slot_mask;
    for (;; i = (i + 1) & tok->slot_mask) {
        int32_t id = tok->slot[i];
        if (id < 0) return i;
        size_t len;
        const char *piece = piece_of(tok, id, &len);
        if (len == n && memcmp(piece, s, n) == 0) return i;
    }
}

/* The id of NORMAL piece s, or -1. */
static int32_t find_normal(const tokenizer *tok, const char *s, size_t n)
{
    if (n > tok->max_normal_len) return -1;
    int32_t id = tok->slot[find_slot(tok, s, n)];
    return id >= 0 && tok->type[id] == TOKEN_NORMAL ? id : -1;
}

static int is_special(const tokenizer *tok, int32_t id)
{
    for (int k = 0; k < tok->n_special; k++)
        if (tok->special[k] == id) return 1;
    return 0;
}

/* ---- building ---- */

void tokenizer_free(tokenizer *tok)
{
    if (!tok) return;
    free(tok->type);
    free(tok->score);
    free(tok->text);
    free(tok->text_start);
    free(tok->surface);
    free(tok->surface_start);
    free(tok->slot);
    free(tok);
}

/* A byte token's piece must read "<0xXX>" (upper-case hex, as SentencePiece writes it). */
static int byte_of_piece(const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    const char *hi = s[3] ? memchr(hex, s[3], 16) : NULL;
    const char *lo = s[4] ? memchr(hex, s[4], 16) : NULL;
    if (!hi || !lo) return -1;
    return (int)((hi - hex) * 16 + (lo - hex));
}

static r2gen_status check_piece(const tokenizer_vocab *vocab, size_t i, error *err)
{
    int32_t type = vocab->types[i];
    if (type == TOKEN_USER_DEFINED)
        return error_set(err, R2GEN_ERR_UNSUPPORTED,
                         "tokenizer: token %zu is user-defined (not supported)", i);
    if (type < TOKEN_NORMAL || type > TOKEN_BYTE)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "tokenizer: token %zu has unknown type %d", i,
                         (int)type);
    if (vocab->piece_lens[i] == 0)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "tokenizer: token %zu is empty", i);
    if (!valid_utf8(vocab->pieces[i], vocab->piece_lens[i]))
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "tokenizer: token %zu is not valid UTF-8", i);
    if (isnan(vocab->scores[i]))
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "tokenizer: token %zu has a NaN score", i);
    return R2GEN_OK;
}

/* Whether a "▁" follows some other character in the piece. */
static int has_inner_space_mark(const char *piece, size_t len)
{
    for (size_t k = 1; k + SPACE_MARK_LEN <= len; k++)
        if (memcmp(piece + k, space_mark, SPACE_MARK_LEN) == 0 &&
            !(k >= SPACE_MARK_LEN &&
              memcmp(piece + k - SPACE_MARK_LEN, space_mark, SPACE_MARK_LEN) == 0))
            return 1;
    return 0;
}

/* The piece with every "▁" as a space, into out; returns the length written. */
static size_t spaces_shown(char *out, const char *piece, size_t len)
{
    size_t n = 0;
    for (size_t k = 0; k < len;) {
        if (len - k >= SPACE_MARK_LEN && memcmp(piece + k, space_mark, SPACE_MARK_LEN) == 0) {
            out[n++] = ' ';
            k += SPACE_MARK_LEN;
        } else {
            out[n++] = piece[k++];
        }
    }
    return n;
}

/* Copy pieces, scores and types, and make each token's streamed text. */
static r2gen_status copy_pieces(tokenizer *tok, const tokenizer_vocab *vocab, error *err)
{
    size_t n = vocab->n_vocab, total = 0;
    for (size_t i = 0; i < n; i++) {
        r2gen_status status = check_piece(vocab, i, err);
        if (status != R2GEN_OK) return status;
        total += vocab->piece_lens[i];
    }
    tok->type = malloc(n);
    tok->score = malloc(n * sizeof *tok->score);
    tok->text = malloc(total);
    tok->text_start = malloc((n + 1) * sizeof *tok->text_start);
    tok->surface = malloc(total);
    tok->surface_start = malloc((n + 1) * sizeof *tok->surface_start);
    if (!tok->type || !tok->score || !tok->text || !tok->text_start || !tok->surface ||
        !tok->surface_start)
        return out_of_memory(err);
    for (int b = 0; b < 256; b++) tok->byte_token[b] = -1;
    tok->words_are_independent = 1;
    size_t at = 0, surface_at = 0;
    for (size_t i = 0; i < n; i++) {
        const char *piece = vocab->pieces[i];
        size_t len = vocab->piece_lens[i];
        tok->type[i] = (uint8_t)vocab->types[i];
        tok->score[i] = vocab->scores[i];
        tok->text_start[i] = at;
        memcpy(tok->text + at, piece, len);
        at += len;
        tok->surface_start[i] = surface_at;
        if (tok->type[i] == TOKEN_BYTE) {
            int b = byte_of_piece(piece, len);
            if (b < 0 || tok->byte_token[b] >= 0)
                return error_set(err, R2GEN_ERR_MODEL_FORMAT,
                                 "tokenizer: byte token %zu is not a distinct <0xXX> piece", i);
            tok->byte_token[b] = (int32_t)i;
            tok->surface[surface_at++] = (char)b;
        } else if (tok->type[i] == TOKEN_NORMAL || tok->type[i] == TOKEN_UNUSED) {
            if (tok->type[i] == TOKEN_NORMAL && len > tok->max_normal_len)
                tok->max_normal_len = len;
            if (tok->type[i] == TOKEN_NORMAL && has_inner_space_mark(piece, len))
                tok->words_are_independent = 0;
            surface_at += spaces_shown(tok->surface + surface_at, piece, len);
        }
    }
    tok->text_start[n] = at;
    tok->surface_start[n] = surface_at;
    for (int b = 0; b < 256; b++)
        if (tok->byte_token[b] < 0)
            return error_set(
                err, R2GEN_ERR_UNSUPPORTED,
                "tokenizer: byte token <0x%02X> is missing (byte fallback is required)", b);
    return R2GEN_OK;
}

static r2gen_status build_table(tokenizer *tok, error *err)
{
    size_t n_slots = 1;
    while (n_slots < 2 * (size_t)tok->n_vocab) n_slots *= 2; /* at most half full */
    tok->slot = malloc(n_slots * sizeof *tok->slot);
    if (!tok->slot) return out_of_memory(err);
    for (size_t i = 0; i < n_slots; i++) tok->slot[i] = -1;
    tok->slot_mask = n_slots - 1;
    for (int32_t id = 0; id < tok->n_vocab; id++) {
        size_t len;
        const char *piece = piece_of(tok, id, &len);
        size_t at = find_slot(tok, piece, len);
        if (tok->slot[at] >= 0)
            return error_set(err, R2GEN_ERR_MODEL_FORMAT,
                             "tokenizer: tokens %d and %d have the same piece", (int)tok->slot[at],
                             (int)id);
        tok->slot[at] = id;
    }
    return R2GEN_OK;
}

static r2gen_status check_special(const tokenizer *tok, const char *what, int32_t id, error *err)
{
    if (id < 0 || id >= tok->n_vocab)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT,
                         "tokenizer: %s id %d is outside the vocabulary", what, (int)id);
    if (tok->type[id] != TOKEN_UNKNOWN && tok->type[id] != TOKEN_CONTROL)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT,
                         "tokenizer: %s id %d is not an unknown or control token", what, (int)id);
    return R2GEN_OK;
}

static r2gen_status set_special_ids(tokenizer *tok, const tokenizer_vocab *vocab, error *err)
{
    const int32_t ids[MAX_SPECIAL] = {vocab->unk_id, vocab->bos_id, vocab->eos_id};
    static const char *const names[MAX_SPECIAL] = {"unknown", "BOS", "EOS"};
    for (int k = 0; k < MAX_SPECIAL; k++) {
        r2gen_status status = check_special(tok, names[k], ids[k], err);
        if (status != R2GEN_OK) return status;
        if (!is_special(tok, ids[k])) tok->special[tok->n_special++] = ids[k];
    }
    if (vocab->pad_id < 0 || vocab->pad_id >= tok->n_vocab)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT,
                         "tokenizer: padding id %d is outside the vocabulary", (int)vocab->pad_id);
    tok->unk_id = vocab->unk_id;
    tok->bos_id = vocab->bos_id;
    tok->eos_id = vocab->eos_id;
    tok->pad_id = vocab->pad_id;
    return R2GEN_OK;
}

r2gen_status tokenizer_create(const tokenizer_vocab *vocab, tokenizer **out, error *err)
{
    if (vocab->n_vocab == 0 || vocab->n_vocab > INT32_MAX)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT,
                         "tokenizer: vocabulary size %zu is not usable", vocab->n_vocab);
    tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) return out_of_memory(err);
    tok->n_vocab = (int32_t)vocab->n_vocab;
    r2gen_status status = copy_pieces(tok, vocab, err);
    if (status == R2GEN_OK) status = build_table(tok, err);
    if (status == R2GEN_OK) status = set_special_ids(tok, vocab, err);
    if (status != R2GEN_OK) {
        tokenizer_free(tok);
        return status;
    }
    *out = tok;
    return R2GEN_OK;
}

/* ---- loading from GGUF ---- */

static r2gen_status find_array(const gguf_file *file, const char *key, gguf_value_type elem_type,
                               const gguf_value **out, error *err)
{
    const gguf_value *v = gguf_find(file, key);
    if (!v) return error_set(err, R2GEN_ERR_MODEL_FORMAT, "metadata key '%s' is missing", key);
    if (v->type != GGUF_ARRAY || (elem_type == GGUF_STRING) != (v->elem_type == GGUF_STRING))
        return error_set(err, R2GEN_ERR_MODEL_FORMAT, "metadata key '%s' is not an array of %s",
                         key, elem_type == GGUF_STRING ? "strings" : "numbers");
    *out = v;
    return R2GEN_OK;
}

static r2gen_status check_model_name(const gguf_file *file, error *err)
{
    const gguf_value *model = gguf_find(file, "tokenizer.ggml.model");
    if (!model) return R2GEN_OK; /* vocabulary-only files may omit it */
    if (model->type != GGUF_STRING)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT,
                         "metadata key 'tokenizer.ggml.model' is not a string");
    if (model->as.str.len != 5 || memcmp(model->as.str.data, "llama", 5) != 0)
        return error_set(err, R2GEN_ERR_UNSUPPORTED,
                         "tokenizer.ggml.model is '%.*s', not 'llama' (SentencePiece BPE)",
                         (int)(model->as.str.len > 64 ? 64 : model->as.str.len),
                         model->as.str.data);
    return R2GEN_OK;
}

/* The four special ids, with Llama-2's / R2GenGPT's values when a key is absent. */
static r2gen_status read_special_ids(const gguf_file *file, tokenizer_vocab *vocab, error *err)
{
    static const char *const keys[4] = {
        "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id"};
    static const uint32_t defaults[4] = {0, 1, 2, 0};
    int32_t *ids[4] = {&vocab->unk_id, &vocab->bos_id, &vocab->eos_id, &vocab->pad_id};
    for (int k = 0; k < 4; k++) {
        uint32_t id;
        r2gen_status status = gguf_get_u32_or(file, keys[k], defaults[k], &id, err);
        if (status != R2GEN_OK) return status;
        /* larger ids are caught by the range check in tokenizer_create */
        *ids[k] = id > INT32_MAX ? -1 : (int32_t)id;
    }
    return R2GEN_OK;
}

typedef struct vocab_arrays {
    const char **pieces;
    size_t *piece_lens;
    float *scores;
    uint32_t *types_u32;
    int32_t *types;
} vocab_arrays;

static void free_vocab_arrays(vocab_arrays *a)
{
    free(a->pieces);
    free(a->piece_lens);
    free(a->scores);
    free(a->types_u32);
    free(a->types);
}

static r2gen_status read_vocab(const gguf_file *file, tokenizer_vocab *vocab, vocab_arrays *a,
                               error *err)
{
    const gguf_value *tokens = NULL, *scores = NULL, *types = NULL;
    r2gen_status status = find_array(file, "tokenizer.ggml.tokens", GGUF_STRING, &tokens, err);
    if (status == R2GEN_OK)
        status = find_array(file, "tokenizer.ggml.scores", GGUF_F32, &scores, err);
    if (status == R2GEN_OK)
        status = find_array(file, "tokenizer.ggml.token_type", GGUF_I32, &types, err);
    if (status != R2GEN_OK) return status;
    size_t n = (size_t)tokens->count;
    if (tokens->count > INT32_MAX || scores->count != tokens->count ||
        types->count != tokens->count)
        return error_set(err, R2GEN_ERR_MODEL_FORMAT,
                         "tokenizer: %llu tokens, %llu scores, %llu token types (must be equal)",
                         (unsigned long long)tokens->count, (unsigned long long)scores->count,
                         (unsigned long long)types->count);
    size_t alloc_n = n ? n : 1;
    a->pieces = malloc(alloc_n * sizeof *a->pieces);
    a->piece_lens = malloc(alloc_n * sizeof *a->piece_lens);
    a->scores = malloc(alloc_n * sizeof *a->scores);
    a->types_u32 = malloc(alloc_n * sizeof *a->types_u32);
    a->types = malloc(alloc_n * sizeof *a->types);
    if (!a->pieces || !a->piece_lens || !a->scores || !a->types_u32 || !a->types)
        return out_of_memory(err);
    const uint8_t *cursor = tokens->elems;
    for (size_t i = 0; i < n; i++) {
        gguf_string s = gguf_array_string(&cursor);
        a->pieces[i] = s.data;
        a->piece_lens[i] = (size_t)s.len;
    }
    size_t n_read;
    status = gguf_get_f32_array(file, "tokenizer.ggml.scores", a->scores, n, &n_read, err);
    if (status == R2GEN_OK)
        status =
            gguf_get_u32_array(file, "tokenizer.ggml.token_type", a->types_u32, n, &n_read, err);
    if (status != R2GEN_OK) return status;
    /* Types beyond 6 are rejected by tokenizer_create; clamp so the conversion is defined. */
    for (size_t i = 0; i < n; i++)
        a->types[i] = a->types_u32[i] > INT32_MAX ? -1 : (int32_t)a->types_u32[i];
    vocab->n_vocab = n;
    vocab->pieces = a->pieces;
    vocab->piece_lens = a->piece_lens;
    vocab->scores = a->scores;
    vocab->types = a->types;
    return read_special_ids(file, vocab, err);
}

r2gen_status tokenizer_load(const gguf_file *file, tokenizer **out, error *err)
{
    tokenizer_vocab vocab = {0};
    vocab_arrays arrays = {0};
    r2gen_status status = check_model_name(file, err);
    if (status == R2GEN_OK) status = read_vocab(file, &vocab, &arrays, err);
    if (status == R2GEN_OK) status = tokenizer_create(&vocab, out, err);
    free_vocab_arrays(&arrays);
    return status;
}

/* ---- accessors ---- */

int32_t tokenizer_n_vocab(const tokenizer *tok) { return tok->n_vocab; }
int32_t tokenizer_bos_id(const tokenizer *tok) { return tok->bos_id; }
int32_t tokenizer_eos_id(const tokenizer *tok) { return tok->eos_id; }
int32_t tokenizer_unk_id(const tokenizer *tok) { return tok->unk_id; }
int32_t tokenizer_pad_id(const tokenizer *tok) { return tok->pad_id; }

const char *tokenizer_token_text(const tokenizer *tok, int32_t id, size_t *len)
{
    if (id < 0 || id >= tok->n_vocab) return NULL;
    return piece_of(tok, id, len);
}

const char *tokenizer_piece(const tokenizer *tok, int32_t id, size_t *len)
{
    if (id < 0 || id >= tok->n_vocab) return NULL;
    *len = tok->surface_start[id + 1] - tok->surface_start[id];
    return tok->surface + tok->surface_start[id];
}

/* ---- encoding ---- */

/* One symbol of the BPE: norm[start .. start + len), linked to its live neighbours. len 0 marks a
 * symbol merged into its left neighbour. */
typedef struct symbol {
    uint32_t start, len;
    int32_t prev, next;
} symbol;

/* A candidate merge of symbols left and right into a piece of `len` bytes with that score. */
typedef struct merge {
    float score;
    int32_t left, right;
    uint32_t len;
} merge;

typedef struct bpe {
    char *norm;
    symbol *symbols;
    merge *heap;
    size_t n_heap, heap_cap;
} bpe;

/* SentencePiece's agenda order: higher score first, then the pair further left. */
static int merge_before(const merge *a, const merge *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static r2gen_status heap_push(bpe *w, merge m, error *err)
{
    merge *heap = grow(w->heap, &w->heap_cap, w->n_heap + 1, sizeof *heap);
    if (!heap) return out_of_memory(err);
    w->heap = heap;
    size_t i = w->n_heap++;
    while (i > 0 && merge_before(&m, &heap[(i - 1) / 2])) {
        heap[i] = heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap[i] = m;
    return R2GEN_OK;
}

static merge heap_pop(bpe *w)
{
    merge *heap = w->heap;
    merge top = heap[0], last = heap[--w->n_heap];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= w->n_heap) break;
        if (child + 1 < w->n_heap && merge_before(&heap[child + 1], &heap[child])) child++;
        if (!merge_before(&heap[child], &last)) break;
        heap[i] = heap[child];
        i = child;
    }
    if (w->n_heap > 0) heap[i] = last;
    return top;
}

/* Queue the merge of two adjacent symbols if their concatenation is a NORMAL piece. */
static r2gen_status consider_pair(const tokenizer *tok, bpe *w, int32_t left, int32_t right,
                                  error *err)
{
    if (left < 0 || right < 0) return R2GEN_OK;
    const symbol *l = &w->symbols[left];
    uint32_t len = l->len + w->symbols[right].len;
    int32_t id = find_normal(tok, w->norm + l->start, len);
    if (id < 0) return R2GEN_OK;
    merge m = {tok->score[id], left, right, len};
    return heap_push(w, m, err);
}

/* "▁" + text with spaces as "▁" and invalid bytes as U+FFFD, one symbol per character. */
static size_t normalise(const char *text, size_t len, bpe *w)
{
    size_t at = 0, n_symbols = 0;
    memcpy(w->norm, space_mark, SPACE_MARK_LEN);
    w->symbols[n_symbols++] = (symbol){0, SPACE_MARK_LEN, -1, -1};
    at = SPACE_MARK_LEN;
    for (size_t i = 0; i < len;) {
        uint32_t c;
        size_t k = utf8_char((const unsigned char *)text + i, len - i, &c);
        const char *out = text + i;
        size_t out_len = k;
        if (k == 0) {
            out = replacement_char;
            out_len = REPLACEMENT_CHAR_LEN;
            k = 1;
        } else if (c == ' ') {
            out = space_mark;
            out_len = SPACE_MARK_LEN;
        }
        memcpy(w->norm + at, out, out_len);
        w->symbols[n_symbols++] = (symbol){(uint32_t)at, (uint32_t)out_len, -1, -1};
        at += out_len;
        i += k;
    }
    return n_symbols;
}

static int is_space_mark(const bpe *w, size_t s)
{
    const symbol *sym = &w->symbols[s];
    return sym->len == SPACE_MARK_LEN &&
           memcmp(w->norm + sym->start, space_mark, SPACE_MARK_LEN) == 0;
}

/* Where the word starting at symbol `first` ends: at the next "▁" that follows another character.
 * When no piece has "▁" after another character (tok->words_are_independent), no merge crosses
 * that point, so BPE gives the same result word by word, with small queues. */
static size_t word_end(const tokenizer *tok, const bpe *w, size_t first, size_t n_symbols)
{
    if (!tok->words_are_independent) return n_symbols;
    size_t s = first + 1;
    while (s < n_symbols && !(is_space_mark(w, s) && !is_space_mark(w, s - 1))) s++;
    return s;
}

/* BPE over symbols [first, end), which are linked into a list here. */
static r2gen_status run_merges(const tokenizer *tok, bpe *w, size_t first, size_t end, error *err)
{
    for (size_t s = first; s < end; s++) {
        w->symbols[s].prev = s > first ? (int32_t)s - 1 : -1;
        w->symbols[s].next = s + 1 < end ? (int32_t)s + 1 : -1;
    }
    r2gen_status status = R2GEN_OK;
    for (size_t s = first; s + 1 < end && status == R2GEN_OK; s++)
        status = consider_pair(tok, w, (int32_t)s, (int32_t)s + 1, err);
    while (w->n_heap > 0 && status == R2GEN_OK) {
        merge m = heap_pop(w);
        symbol *l = &w->symbols[m.left], *r = &w->symbols[m.right];
        /* Stale: one side was merged away or grew since this pair was queued. */
        if (l->len == 0 || r->len == 0 || l->len + r->len != m.len) continue;
        l->len += r->len;
        l->next = r->next;
        if (r->next >= 0) w->symbols[r->next].prev = m.left;
        r->len = 0;
        status = consider_pair(tok, w, l->prev, m.left, err);
        if (status == R2GEN_OK) status = consider_pair(tok, w, m.left, l->next, err);
    }
    return status;
}

/* The ids of the symbols left in the list that starts at `first`. */
static r2gen_status emit_symbols(const tokenizer *tok, const bpe *w, size_t first, id_buf *ids,
                                 error *err)
{
    r2gen_status status = R2GEN_OK;
    for (int32_t s = (int32_t)first; s >= 0 && status == R2GEN_OK; s = w->symbols[s].next) {
        const symbol *sym = &w->symbols[s];
        const char *bytes = w->norm + sym->start;
        int32_t id = find_normal(tok, bytes, sym->len);
        if (id >= 0) {
            status = id_append(ids, id, err);
            continue;
        }
        for (uint32_t k = 0; k < sym->len && status == R2GEN_OK; k++)
            status = id_append(ids, tok->byte_token[(unsigned char)bytes[k]], err);
    }
    return status;
}

/* SentencePiece's encode of one piece of text that holds no special token. */
static r2gen_status encode_plain(const tokenizer *tok, const char *text, size_t len, id_buf *ids,
                                 error *err)
{
    /* Every input byte grows to at most 3 normalised bytes; starts and lengths are 32-bit. */
    if (len > (UINT32_MAX - SPACE_MARK_LEN) / REPLACEMENT_CHAR_LEN)
        return error_set(err, R2GEN_ERR_INVALID_ARGUMENT,
                         "tokenizer: text of %zu bytes is too long", len);
    bpe w = {0};
    w.norm = malloc(SPACE_MARK_LEN + REPLACEMENT_CHAR_LEN * len);
    w.symbols = malloc((len + 1) * sizeof *w.symbols);
    r2gen_status status = w.norm && w.symbols ? R2GEN_OK : out_of_memory(err);
    size_t n_symbols = status == R2GEN_OK ? normalise(text, len, &w) : 0;
    for (size_t first = 0; first < n_symbols && status == R2GEN_OK;) {
        size_t end = word_end(tok, &w, first, n_symbols);
        status = run_merges(tok, &w, first, end, err);
        if (status == R2GEN_OK) status = emit_symbols(tok, &w, first, ids, err);
        first = end;
    }
    free(w.norm);
    free(w.symbols);
    free(w.heap);
    return status;
}

/* The earliest special-token text at or after `from` (the longest if several start there):
 * returns its position and sets *id, or returns len. */
static size_t find_special(const tokenizer *tok, const char *text, size_t len, size_t from,
                           int32_t *id)
{
    for (size_t at = from; at < len; at++) {
        size_t best = 0;
        for (int k = 0; k < tok->n_special; k++) {
            size_t n;
            const char *piece = piece_of(tok, tok->special[k], &n);
            if (n > best && n <= len - at && memcmp(text + at, piece, n) == 0) {
                best = n;
                *id = tok->special[k];
            }
        }
        if (best) return at;
    }
    return len;
}

r2gen_status tokenizer_encode(const tokenizer *tok, const char *text, size_t len, int32_t **ids,
                              size_t *n_ids, error *err)
{
    if (!text && len > 0)
        return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "tokenizer: text is NULL");
    id_buf out = {0};
    r2gen_status status = R2GEN_OK;
    size_t at = 0;
    while (at < len && status == R2GEN_OK) {
        int32_t special_id = -1;
        size_t found = find_special(tok, text, len, at, &special_id);
        if (found > at) status = encode_plain(tok, text + at, found - at, &out, err);
        if (found == len) break;
        if (status == R2GEN_OK) status = id_append(&out, special_id, err);
        size_t n;
        piece_of(tok, special_id, &n);
        at = found + n;
    }
    if (status != R2GEN_OK) {
        free(out.data);
        return status;
    }
    *ids = out.data;
    *n_ids = out.len;
    return R2GEN_OK;
}

/* ---- decoding ---- */

static r2gen_status check_ids(const tokenizer *tok, const int32_t *ids, size_t n, error *err)
{
    if (!ids && n > 0) return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "tokenizer: ids are NULL");
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= tok->n_vocab)
            return error_set(err, R2GEN_ERR_INVALID_ARGUMENT,
                             "tokenizer: id %d at position %zu is outside the vocabulary (%d)",
                             (int)ids[i], i, (int)tok->n_vocab);
    return R2GEN_OK;
}

/* Consecutive byte tokens from ids[0] (at most 4, enough for one character) into bytes. */
static size_t gather_bytes(const tokenizer *tok, const int32_t *ids, size_t n, unsigned char *bytes)
{
    size_t k = 0;
    for (; k < n && k < 4 && tok->type[ids[k]] == TOKEN_BYTE; k++)
        bytes[k] = (unsigned char)tok->surface[tok->surface_start[ids[k]]];
    return k;
}

static int starts_with_space_mark(const tokenizer *tok, int32_t id)
{
    size_t len;
    const char *piece = piece_of(tok, id, &len);
    return len >= SPACE_MARK_LEN && memcmp(piece, space_mark, SPACE_MARK_LEN) == 0;
}

/* SentencePiece's decode of a run of non-special tokens: byte tokens form UTF-8 characters
 * (U+FFFD for each byte that does not), normal and unused pieces show "▁" as a space, and the first
 * piece that shows anything loses one leading "▁" (the dummy prefix). Control tokens show nothing.
 */
static r2gen_status decode_run(const tokenizer *tok, const int32_t *ids, size_t n, text_buf *out,
                               error *err)
{
    int at_start = 1;
    r2gen_status status = R2GEN_OK;
    for (size_t i = 0; i < n && status == R2GEN_OK;) {
        int32_t id = ids[i];
        if (tok->type[id] == TOKEN_BYTE) {
            unsigned char bytes[4];
            size_t avail = gather_bytes(tok, ids + i, n - i, bytes);
            uint32_t c;
            size_t k = utf8_char(bytes, avail, &c);
            status = k ? text_append(out, (const char *)bytes, k, err)
                       : text_append(out, replacement_char, REPLACEMENT_CHAR_LEN, err);
            i += k ? k : 1;
            at_start = 0;
            continue;
        }
        if (tok->type[id] == TOKEN_NORMAL || tok->type[id] == TOKEN_UNUSED) {
            size_t len = 0;
            const char *shown = tokenizer_piece(tok, id, &len);
            size_t skip = at_start && starts_with_space_mark(tok, id) ? 1 : 0;
            status = text_append(out, shown + skip, len - skip, err);
            at_start = 0;
        }
        i++;
    }
    return status;
}

static r2gen_status decode_to(const tokenizer *tok, const int32_t *ids, size_t n, text_buf *out,
                              error *err)
{
    r2gen_status status = check_ids(tok, ids, n, err);
    size_t run_start = 0;
    int prev_special = 0;
    for (size_t i = 0; i < n && status == R2GEN_OK; i++) {
        if (!is_special(tok, ids[i])) {
            prev_special = 0;
            continue;
        }
        /* LlamaTokenizer.convert_tokens_to_string: the space goes before the run, not the token. */
        if (!prev_special && i != 0) status = text_append(out, " ", 1, err);
        if (status == R2GEN_OK) status = decode_run(tok, ids + run_start, i - run_start, out, err);
        size_t len;
        const char *piece = piece_of(tok, ids[i], &len);
        if (status == R2GEN_OK) status = text_append(out, piece, len, err);
        prev_special = 1;
        run_start = i + 1;
    }
    /* (ids may be NULL when n is 0: no pointer arithmetic on it then) */
    if (status == R2GEN_OK && run_start < n)
        status = decode_run(tok, ids + run_start, n - run_start, out, err);
    /* An empty text still needs its buffer for the NUL. */
    if (status == R2GEN_OK) status = text_append(out, "", 0, err);
    if (status == R2GEN_OK) out->data[out->len] = '\0';
    return status;
}

r2gen_status tokenizer_decode(const tokenizer *tok, const int32_t *ids, size_t n, char **text,
                              error *err)
{
    text_buf out = {0};
    r2gen_status status = decode_to(tok, ids, n, &out, err);
    if (status != R2GEN_OK) {
        free(out.data);
        return status;
    }
    *text = out.data;
    return R2GEN_OK;
}

/* Python's str.isspace() (what str.strip() removes). */
static int python_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Bytes of leading whitespace in s[0..n) (decoded text is valid UTF-8). */
static size_t leading_space(const char *s, size_t n)
{
    size_t at = 0;
    while (at < n) {
        uint32_t c;
        size_t k = utf8_char((const unsigned char *)s + at, n - at, &c);
        if (k == 0 || !python_space(c)) break;
        at += k;
    }
    return at;
}

/* Length of s[0..n) without its trailing whitespace. */
static size_t without_trailing_space(const char *s, size_t n)
{
    while (n > 0) {
        size_t start = n - 1;
        while (start > 0 && ((unsigned char)s[start] & 0xC0) == 0x80) start--;
        uint32_t c;
        size_t k = utf8_char((const unsigned char *)s + start, n - start, &c);
        if (k != n - start || !python_space(c)) break;
        n = start;
    }
    return n;
}

/* Position of the first `needle` in s[0..n), or n (decoded text may hold NUL bytes). */
static size_t find_text(const char *s, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t at = 0; at + m <= n; at++)
        if (memcmp(s + at, needle, m) == 0) return at;
    return n;
}

r2gen_status tokenizer_decode_report(const tokenizer *tok, const int32_t *ids, size_t n,
                                     char **text, error *err)
{
    if (n > 0 && ids && ids[0] == 0) ids++, n--;
    if (n > 0 && ids && ids[0] == 1) ids++, n--;
    text_buf out = {0};
    r2gen_status status = decode_to(tok, ids, n, &out, err);
    if (status != R2GEN_OK) {
        free(out.data);
        return status;
    }
    char *s = out.data;
    size_t len = out.len;
    len = find_text(s, len, report_end);
    len = without_trailing_space(s, len);
    size_t skip = leading_space(s, len);
    /* Remove every "<unk>", moving the kept text to the front. */
    size_t kept = 0;
    for (size_t i = skip; i < len;) {
        size_t unk = i + find_text(s + i, len - i, report_unknown);
        memmove(s + kept, s + i, unk - i);
        kept += unk - i;
        i = unk < len ? unk + strlen(report_unknown) : len;
    }
    s[kept] = '\0';
    *text = s;
    return R2GEN_OK;
}
