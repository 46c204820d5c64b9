/* The tokenizer on small hand-made vocabularies: BPE merge order (scores, the leftmost-first tie
 * rule, stale pairs), byte fallback, unused and control pieces, the special-token split, R2GenGPT's
 * strip/cut/<unk> rules, and every vocabulary check of tokenizer_create and tokenizer_load (through
 * GGUF files written in memory). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gguf_builder.h"
#include "text_fixtures.h"

/* Every vocabulary here: <unk> <s> </s>, the 256 byte tokens, "▁" "a" "b" "c", then the pieces a
 * test adds. */
#define FIRST_BYTE_ID 3
#define SPACE_ID 259
#define A_ID 260
#define B_ID 261
#define C_ID 262
#define FIRST_EXTRA_ID 263
#define MAX_EXTRA 8
#define MAX_PIECES (FIRST_EXTRA_ID + MAX_EXTRA)
#define SPACE_MARK "\xE2\x96\x81"

typedef struct piece_spec {
    const char *text;
    float score;
    int32_t type;
} piece_spec;

typedef struct vocab_builder {
    const char *pieces[MAX_PIECES];
    size_t lens[MAX_PIECES];
    float scores[MAX_PIECES];
    int32_t types[MAX_PIECES];
    char byte_names[256][8];
    tokenizer_vocab vocab;
} vocab_builder;

static void add_piece(vocab_builder *b, const char *text, size_t len, float score, int32_t type)
{
    size_t i = b->vocab.n_vocab++;
    b->pieces[i] = text;
    b->lens[i] = len;
    b->scores[i] = score;
    b->types[i] = type;
}

static void build_vocab(vocab_builder *b, const piece_spec *extra, size_t n_extra)
{
    memset(b, 0, sizeof *b);
    add_piece(b, "<unk>", 5, 0.0f, TOKEN_UNKNOWN);
    add_piece(b, "<s>", 3, 0.0f, TOKEN_CONTROL);
    add_piece(b, "</s>", 4, 0.0f, TOKEN_CONTROL);
    for (int byte = 0; byte < 256; byte++) {
        snprintf(b->byte_names[byte], sizeof b->byte_names[byte], "<0x%02X>", byte);
        add_piece(b, b->byte_names[byte], 6, 0.0f, TOKEN_BYTE);
    }
    add_piece(b, SPACE_MARK, 3, -100.0f, TOKEN_NORMAL);
    add_piece(b, "a", 1, -101.0f, TOKEN_NORMAL);
    add_piece(b, "b", 1, -102.0f, TOKEN_NORMAL);
    add_piece(b, "c", 1, -103.0f, TOKEN_NORMAL);
    for (size_t i = 0; i < n_extra && i < MAX_EXTRA; i++)
        add_piece(b, extra[i].text, strlen(extra[i].text), extra[i].score, extra[i].type);
    b->vocab.pieces = b->pieces;
    b->vocab.piece_lens = b->lens;
    b->vocab.scores = b->scores;
    b->vocab.types = b->types;
    b->vocab.unk_id = 0;
    b->vocab.bos_id = 1;
    b->vocab.eos_id = 2;
    b->vocab.pad_id = 0;
}

static tokenizer *make_tokenizer(const piece_spec *extra, size_t n_extra)
{
    vocab_builder b;
    build_vocab(&b, extra, n_extra);
    tokenizer *tok = NULL;
    error err = {0};
    CHECK(tokenizer_create(&b.vocab, &tok, &err) == R2GEN_OK, "%s", err.message);
    return tok;
}

#define N_OF(array) (sizeof(array) / sizeof((array)[0]))
#define ENCODES_TO(tok, text, ...)                                                                 \
    do {                                                                                           \
        const int32_t want_[] = {__VA_ARGS__};                                                     \
        CHECK(encodes_to(tok, text, strlen(text), want_, N_OF(want_)), "encode '%s'", text);       \
    } while (0)

static void check_decode(const tokenizer *tok, int report, const int32_t *ids, size_t n,
                         const char *want)
{
    char *text = NULL;
    error err = {0};
    r2gen_status status = report ? tokenizer_decode_report(tok, ids, n, &text, &err)
                                 : tokenizer_decode(tok, ids, n, &text, &err);
    CHECK(status == R2GEN_OK && strcmp(text, want) == 0, "%s: got '%s', want '%s'",
          report ? "R2GenGPT decode" : "decode", text ? text : err.message, want);
    free(text);
}

#define DECODES_TO(tok, want, ...)                                                                 \
    do {                                                                                           \
        const int32_t ids_[] = {__VA_ARGS__};                                                      \
        check_decode(tok, 0, ids_, N_OF(ids_), want);                                              \
    } while (0)
#define REPORT_IS(tok, want, ...)                                                                  \
    do {                                                                                           \
        const int32_t ids_[] = {__VA_ARGS__};                                                      \
        check_decode(tok, 1, ids_, N_OF(ids_), want);                                              \
    } while (0)

static void test_merge_order(void)
{
    /* Equal scores: the pair further left merges first. */
    const piece_spec tie[] = {{"ab", -5.0f, TOKEN_NORMAL}, {"ba", -5.0f, TOKEN_NORMAL}};
    tokenizer *tok = make_tokenizer(tie, N_OF(tie));
    if (tok) ENCODES_TO(tok, "aba", SPACE_ID, FIRST_EXTRA_ID, A_ID);
    tokenizer_free(tok);

    /* A higher score wins wherever it is. */
    const piece_spec higher[] = {{"ab", -5.0f, TOKEN_NORMAL}, {"ba", -4.0f, TOKEN_NORMAL}};
    tok = make_tokenizer(higher, N_OF(higher));
    if (tok) ENCODES_TO(tok, "aba", SPACE_ID, A_ID, FIRST_EXTRA_ID + 1);
    tokenizer_free(tok);

    /* "ab" first; the queued "bc" is then stale, and "ab"+"c" makes "abc". A merge also forms a
     * pair with its left neighbour: "▁" + "abc" = "▁abc", which outranks the earlier "▁a". */
    const piece_spec chain[] = {{"ab", -1.0f, TOKEN_NORMAL},
                                {"bc", -2.0f, TOKEN_NORMAL},
                                {"abc", -3.0f, TOKEN_NORMAL},
                                {SPACE_MARK "a", -10.0f, TOKEN_NORMAL},
                                {SPACE_MARK "abc", -4.0f, TOKEN_NORMAL}};
    tok = make_tokenizer(chain, N_OF(chain));
    if (tok) {
        ENCODES_TO(tok, "abc", FIRST_EXTRA_ID + 4);
        ENCODES_TO(tok, "abcbc", FIRST_EXTRA_ID + 4, FIRST_EXTRA_ID + 1);
        ENCODES_TO(tok, "ab", SPACE_ID, FIRST_EXTRA_ID);
        ENCODES_TO(tok, "ac", FIRST_EXTRA_ID + 3, C_ID);
    }
    tokenizer_free(tok);

    /* A piece with "▁" after another character: merges cross word starts (Llama-2 has none, and
     * the tokenizer then works word by word). */
    const piece_spec across[] = {{"a" SPACE_MARK, -1.0f, TOKEN_NORMAL}};
    tok = make_tokenizer(across, N_OF(across));
    if (tok) ENCODES_TO(tok, "a a", SPACE_ID, FIRST_EXTRA_ID, A_ID);
    tokenizer_free(tok);
}

static void test_fallback_and_types(void)
{
    const piece_spec extra[] = {{"ab", -1.0f, TOKEN_UNUSED},
                                {"<ctl>", 0.0f, TOKEN_CONTROL},
                                {SPACE_MARK "a", -1.0f, TOKEN_NORMAL}};
    const int32_t unused = FIRST_EXTRA_ID, control = FIRST_EXTRA_ID + 1,
                  space_a = FIRST_EXTRA_ID + 2;
    tokenizer *tok = make_tokenizer(extra, N_OF(extra));
    if (!tok) return;
    /* Characters without a piece become their UTF-8 bytes. */
    ENCODES_TO(tok, "\xC3\xA9", SPACE_ID, FIRST_BYTE_ID + 0xC3, FIRST_BYTE_ID + 0xA9);
    ENCODES_TO(tok, "x a", SPACE_ID, FIRST_BYTE_ID + 'x', space_a);
    /* Unused pieces are never produced, but decode shows their text. */
    ENCODES_TO(tok, "ab", space_a, B_ID);
    DECODES_TO(tok, "ab", unused);
    /* A control token that is not special shows nothing and does not end the leading-space run. */
    DECODES_TO(tok, "a", control, space_a);
    DECODES_TO(tok, "x a", FIRST_BYTE_ID + 'x', space_a);
    /* Control text is ordinary text unless it is the unknown, BOS or EOS token. */
    ENCODES_TO(tok, "<ctl>", SPACE_ID, FIRST_BYTE_ID + '<', C_ID, FIRST_BYTE_ID + 't',
               FIRST_BYTE_ID + 'l', FIRST_BYTE_ID + '>');
    tokenizer_free(tok);
}

static void test_special_split(void)
{
    tokenizer *tok = make_tokenizer(NULL, 0);
    if (!tok) return;
    ENCODES_TO(tok, "a<unk>b</s>", SPACE_ID, A_ID, 0, SPACE_ID, B_ID, 2);
    ENCODES_TO(tok, "<s><s>", 1, 1);
    ENCODES_TO(tok, "</s ", SPACE_ID, FIRST_BYTE_ID + '<', FIRST_BYTE_ID + '/', FIRST_BYTE_ID + 's',
               SPACE_ID);
    DECODES_TO(tok, " a</s>b", SPACE_ID, A_ID, 2, B_ID);
    DECODES_TO(tok, "<s> a b<unk>", 1, A_ID, SPACE_ID, B_ID, 0);
    tokenizer_free(tok);
}

/* R2GenGPT's decode(): a leading 0 then a leading 1 dropped, cut at "</s>", Python's strip(),
 * "<unk>" removed. */
static void test_report_rules(void)
{
    const piece_spec spaces[] = {{"\xE3\x80\x80", -1.0f, TOKEN_NORMAL},  /* U+3000 */
                                 {"\xC2\xA0", -1.0f, TOKEN_NORMAL},      /* U+00A0 */
                                 {"\xE2\x80\x8B", -1.0f, TOKEN_NORMAL},  /* U+200B */
                                 {"\xE2\x80\xA9", -1.0f, TOKEN_NORMAL}}; /* U+2029 */
    const int32_t ideographic = FIRST_EXTRA_ID, nbsp = FIRST_EXTRA_ID + 1,
                  zero_width = FIRST_EXTRA_ID + 2, paragraph = FIRST_EXTRA_ID + 3;
    const int32_t tab = FIRST_BYTE_ID + '\t', newline = FIRST_BYTE_ID + '\n';
    tokenizer *tok = make_tokenizer(spaces, N_OF(spaces));
    if (!tok) return;
    REPORT_IS(tok, "a", 0, 1, ideographic, A_ID, nbsp, tab);
    REPORT_IS(tok, "a\xE2\x80\x8B", newline, A_ID, zero_width, paragraph);
    REPORT_IS(tok, "\xE2\x80\x8B a", zero_width, SPACE_ID, A_ID);
    REPORT_IS(tok, "a", 1, 0, A_ID);       /* 1 first: only it is dropped; <unk> goes later */
    REPORT_IS(tok, "a", A_ID, 2, B_ID, 2); /* cut at the first </s> */
    REPORT_IS(tok, "a b", A_ID, 0, SPACE_ID, B_ID, 2);
    REPORT_IS(tok, "a  b", A_ID, SPACE_ID, 0, B_ID, 2); /* " a <unk>" + " b</s>" */
    /* The " " put before the run that ends at </s> survives; a streamer shows "ab" (see
     * tokenizer.h). */
    REPORT_IS(tok, "a b", A_ID, 0, B_ID, 2);
    REPORT_IS(tok, "ab", A_ID, 0, B_ID);
    REPORT_IS(tok, " b", 0, 0, SPACE_ID, 0, SPACE_ID, B_ID); /* strip happens before "<unk>" goes */
    REPORT_IS(tok, "", 1, 2);
    REPORT_IS(tok, "", 0);
    tokenizer_free(tok);
}

static void expect_create_failure(const vocab_builder *b, r2gen_status want, const char *what)
{
    tokenizer *tok = NULL;
    error err = {0};
    r2gen_status status = tokenizer_create(&b->vocab, &tok, &err);
    CHECK(status == want && tok == NULL && err.message[0], "%s: status %d (%s)", what, (int)status,
          err.message);
    tokenizer_free(tok);
}

static void test_vocab_checks(void)
{
    static const struct {
        piece_spec extra;
        r2gen_status want;
        const char *what;
    } bad_pieces[] = {
        {{"a", -1.0f, TOKEN_NORMAL}, R2GEN_ERR_MODEL_FORMAT, "duplicate piece"},
        {{"", -1.0f, TOKEN_NORMAL}, R2GEN_ERR_MODEL_FORMAT, "empty piece"},
        {{"\xC3", -1.0f, TOKEN_NORMAL}, R2GEN_ERR_MODEL_FORMAT, "piece not UTF-8"},
        {{"\xED\xA0\x80", -1.0f, TOKEN_NORMAL}, R2GEN_ERR_MODEL_FORMAT, "surrogate piece"},
        {{"xy", -1.0f, TOKEN_USER_DEFINED}, R2GEN_ERR_UNSUPPORTED, "user-defined piece"},
        {{"xy", -1.0f, 0}, R2GEN_ERR_MODEL_FORMAT, "type 0"},
        {{"xy", -1.0f, 7}, R2GEN_ERR_MODEL_FORMAT, "type 7"},
        {{"xy", NAN, TOKEN_NORMAL}, R2GEN_ERR_MODEL_FORMAT, "NaN score"},
        {{"<0x4g>", 0.0f, TOKEN_BYTE}, R2GEN_ERR_MODEL_FORMAT, "malformed byte piece"},
        {{"<0x4a>", 0.0f, TOKEN_BYTE}, R2GEN_ERR_MODEL_FORMAT, "lower-case byte piece"},
    };
    vocab_builder b;
    for (size_t i = 0; i < N_OF(bad_pieces); i++) {
        build_vocab(&b, &bad_pieces[i].extra, 1);
        expect_create_failure(&b, bad_pieces[i].want, bad_pieces[i].what);
    }

    build_vocab(&b, NULL, 0);
    b.types[FIRST_BYTE_ID + 0x41] = TOKEN_NORMAL; /* "<0x41>" as text: byte 0x41 has no token */
    expect_create_failure(&b, R2GEN_ERR_UNSUPPORTED, "missing byte token");

    static const struct {
        int32_t unk, bos, eos, pad;
        const char *what;
    } bad_ids[] = {
        {MAX_PIECES, 1, 2, 0, "unknown id out of range"},
        {0, A_ID, 2, 0, "BOS id names a normal piece"},
        {0, 1, FIRST_BYTE_ID, 0, "EOS id names a byte token"},
        {0, 1, -1, 0, "negative EOS id"},
        {0, 1, 2, C_ID + 1, "padding id out of range"},
    };
    for (size_t i = 0; i < N_OF(bad_ids); i++) {
        build_vocab(&b, NULL, 0);
        b.vocab.unk_id = bad_ids[i].unk;
        b.vocab.bos_id = bad_ids[i].bos;
        b.vocab.eos_id = bad_ids[i].eos;
        b.vocab.pad_id = bad_ids[i].pad;
        expect_create_failure(&b, R2GEN_ERR_MODEL_FORMAT, bad_ids[i].what);
    }

    build_vocab(&b, NULL, 0);
    b.vocab.n_vocab = 0;
    expect_create_failure(&b, R2GEN_ERR_MODEL_FORMAT, "empty vocabulary");
}

/* ---- GGUF files ---- */

/* Value type numbers of the GGUF format. */
enum {
    GGUF_TYPE_U32 = 4,
    GGUF_TYPE_I32 = 5,
    GGUF_TYPE_F32 = 6,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9
};

/* What to spoil in the written file. */
typedef struct gguf_variant {
    const char *model;     /* tokenizer.ggml.model, or NULL for none */
    int drop_tokens;       /* leave out tokenizer.ggml.tokens */
    int tokens_as_numbers; /* write the tokens key as an f32 array */
    int short_scores;      /* one score fewer than tokens */
    uint32_t bos_id;       /* written when nonzero */
} gguf_variant;

static void put_key(byte_buffer *out, const char *key, uint32_t type)
{
    buffer_string(out, key);
    buffer_u32(out, type);
}

static void put_array_header(byte_buffer *out, const char *key, uint32_t elem_type, uint64_t count)
{
    put_key(out, key, GGUF_TYPE_ARRAY);
    buffer_u32(out, elem_type);
    buffer_u64(out, count);
}

static void write_vocab_gguf(byte_buffer *out, const vocab_builder *b, const gguf_variant *v)
{
    size_t n = b->vocab.n_vocab;
    buffer_put(out, "GGUF", 4);
    buffer_u32(out, 3);
    buffer_u64(out, 0); /* tensors */
    buffer_u64(out, 3 + (v->model != NULL) + (v->bos_id != 0) - (v->drop_tokens != 0));
    if (v->model) {
        put_key(out, "tokenizer.ggml.model", GGUF_TYPE_STRING);
        buffer_string(out, v->model);
    }
    if (v->tokens_as_numbers) {
        put_array_header(out, "tokenizer.ggml.tokens", GGUF_TYPE_F32, n);
        for (size_t i = 0; i < n; i++) buffer_put(out, &b->scores[i], sizeof(float));
    } else if (!v->drop_tokens) {
        put_array_header(out, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, n);
        for (size_t i = 0; i < n; i++) {
            buffer_u64(out, b->lens[i]);
            buffer_put(out, b->pieces[i], b->lens[i]);
        }
    }
    size_t n_scores = v->short_scores ? n - 1 : n;
    put_array_header(out, "tokenizer.ggml.scores", GGUF_TYPE_F32, n_scores);
    for (size_t i = 0; i < n_scores; i++) buffer_put(out, &b->scores[i], sizeof(float));
    put_array_header(out, "tokenizer.ggml.token_type", GGUF_TYPE_I32, n);
    for (size_t i = 0; i < n; i++) buffer_put(out, &b->types[i], sizeof(int32_t));
    if (v->bos_id) {
        put_key(out, "tokenizer.ggml.bos_token_id", GGUF_TYPE_U32);
        buffer_u32(out, v->bos_id);
    }
}

/* Load the tokenizer of a GGUF written with variant v; returns the status. */
static r2gen_status load_variant(const gguf_variant *v, tokenizer **tok, error *err)
{
    const piece_spec extra[] = {{"ab", -1.0f, TOKEN_NORMAL}};
    vocab_builder b;
    build_vocab(&b, extra, N_OF(extra));
    byte_buffer file_bytes = {0};
    write_vocab_gguf(&file_bytes, &b, v);
    gguf_file *file = NULL;
    r2gen_status status = gguf_open_memory(file_bytes.data, file_bytes.size, &file, err);
    if (status == R2GEN_OK) status = tokenizer_load(file, tok, err);
    gguf_close(file);
    buffer_free(&file_bytes);
    return status;
}

static void test_gguf_loading(void)
{
    tokenizer *tok = NULL;
    error err = {0};
    const gguf_variant plain = {"llama", 0, 0, 0, 0};
    CHECK(load_variant(&plain, &tok, &err) == R2GEN_OK, "%s", err.message);
    if (tok) {
        /* Absent special ids take Llama-2's values. */
        CHECK(tokenizer_n_vocab(tok) == FIRST_EXTRA_ID + 1, "n_vocab %d",
              (int)tokenizer_n_vocab(tok));
        CHECK(tokenizer_unk_id(tok) == 0 && tokenizer_bos_id(tok) == 1 &&
                  tokenizer_eos_id(tok) == 2 && tokenizer_pad_id(tok) == 0,
              "default special ids");
        ENCODES_TO(tok, "ab c", SPACE_ID, FIRST_EXTRA_ID, SPACE_ID, C_ID);
    }
    tokenizer_free(tok);

    static const struct {
        gguf_variant variant;
        r2gen_status want;
        const char *what;
    } bad[] = {
        {{"gpt2", 0, 0, 0, 0}, R2GEN_ERR_UNSUPPORTED, "tokenizer.ggml.model gpt2"},
        {{NULL, 1, 0, 0, 0}, R2GEN_ERR_MODEL_FORMAT, "no tokens"},
        {{NULL, 0, 1, 0, 0}, R2GEN_ERR_MODEL_FORMAT, "tokens are numbers"},
        {{NULL, 0, 0, 1, 0}, R2GEN_ERR_MODEL_FORMAT, "fewer scores than tokens"},
        {{NULL, 0, 0, 0, 100000}, R2GEN_ERR_MODEL_FORMAT, "BOS id out of range"},
        {{NULL, 0, 0, 0, A_ID}, R2GEN_ERR_MODEL_FORMAT, "BOS id names a normal piece"},
    };
    for (size_t i = 0; i < N_OF(bad); i++) {
        tok = NULL;
        error_clear(&err);
        r2gen_status status = load_variant(&bad[i].variant, &tok, &err);
        CHECK(status == bad[i].want && tok == NULL, "%s: status %d (%s)", bad[i].what, (int)status,
              err.message);
        tokenizer_free(tok);
    }
}

int main(void)
{
    test_merge_order();
    test_fallback_and_types();
    test_special_split();
    test_report_rules();
    test_vocab_checks();
    test_gguf_loading();
    return check_summary();
}
