/*
 * r2gen.hpp — a header-only C++17 wrapper of libr2gen's C API (r2gen.h).
 *
 *     r2gen::Model model("r2gengpt-shallow-q8_0.gguf");
 *     model.encode("frontal.png");
 *     std::string report = model.report();        // R2GenGPT's MIMIC-CXR settings
 *
 * Model owns one r2gen_ctx (RAII, move-only). Every failing call throws r2gen::Error, which
 * carries the r2gen_status and the library's message. Parameter structs are the C ones,
 * initialised from the library's *_default() functions: change the fields you need.
 * As with the C API, one Model is used by one thread at a time; fork() gives one per thread.
 */
#ifndef R2GEN_HPP
#define R2GEN_HPP

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "r2gen.h"

namespace r2gen {

/* A failed libr2gen call. */
class Error : public std::runtime_error {
public:
    Error(r2gen_status status, const std::string &message)
        : std::runtime_error(message), status_(status) {}
    r2gen_status status() const noexcept { return status_; }

private:
    r2gen_status status_;
};

/* r2gen_load_params with the library's defaults. */
struct LoadParams : r2gen_load_params {
    LoadParams() : r2gen_load_params(r2gen_load_params_default()) {}
};

/* r2gen_generate_params with the library's defaults (MIMIC-CXR) or a data set's preset. */
struct GenerateParams : r2gen_generate_params {
    GenerateParams() : r2gen_generate_params(r2gen_generate_params_default()) {}
    explicit GenerateParams(r2gen_preset preset)
        : r2gen_generate_params(r2gen_generate_params_preset(preset)) {}
};

/* r2gen_image with the library's defaults (struct_size set; fill format, size, pixels). */
struct Image : r2gen_image {
    Image() : r2gen_image(r2gen_image_default()) {}
};

/* r2gen_image_options with the library's defaults. */
struct ImageOptions : r2gen_image_options {
    ImageOptions() : r2gen_image_options(r2gen_image_options_default()) {}
};

/* The wrappers add no members: their addresses are the C structs'. */
static_assert(sizeof(LoadParams) == sizeof(r2gen_load_params));
static_assert(sizeof(GenerateParams) == sizeof(r2gen_generate_params));
static_assert(sizeof(Image) == sizeof(r2gen_image));
static_assert(sizeof(ImageOptions) == sizeof(r2gen_image_options));

/* A row-major float matrix: rows x cols values in data. */
struct Matrix {
    std::vector<float> data;
    std::size_t rows = 0, cols = 0;
};

/* The library's version string, e.g. "0.1.0 (jpeg: libjpeg-turbo)". */
inline std::string version() { return r2gen_version(); }

namespace detail {

/* Throw for a non-zero status with r2gen_last_error's message, or the status string when the
 * call recorded none (functions taking a const context cannot record one). */
inline void check(r2gen_status status, const char *message)
{
    if (status == R2GEN_OK) return;
    throw Error(status, message && *message ? message : r2gen_status_string(status));
}

struct ContextDeleter {
    void operator()(r2gen_ctx *ctx) const noexcept { r2gen_free(ctx); }
};

struct StringDeleter {
    void operator()(char *s) const noexcept { r2gen_string_free(s); }
};

/* A report string returned by the library, copied into a std::string and freed. */
inline std::string take_string(char *s)
{
    std::unique_ptr<char, StringDeleter> owned(s);
    return owned ? std::string(owned.get()) : std::string();
}

} // namespace detail

/* A loaded model plus the views of the current study (one r2gen_ctx). */
class Model {
public:
    /* Load a model (see r2gen_load); throws Error naming the file and what is wrong. */
    explicit Model(const std::string &path, const LoadParams &params = LoadParams())
    {
        r2gen_ctx *ctx = nullptr;
        detail::check(r2gen_load(path.c_str(), &params, &ctx), r2gen_last_error(nullptr));
        ctx_.reset(ctx);
    }

    static Model load(const std::string &path, const LoadParams &params = LoadParams())
    {
        return Model(path, params);
    }

    Model(Model &&) noexcept = default;
    Model &operator=(Model &&) noexcept = default;
    Model(const Model &) = delete;
    Model &operator=(const Model &) = delete;

    /* False after the model was moved from. */
    explicit operator bool() const noexcept { return ctx_ != nullptr; }

    /* The C context, for calls this wrapper does not cover. */
    r2gen_ctx *get() const noexcept { return ctx_.get(); }

    /* A second Model on the same (shared) weights, with the same settings and an empty study. */
    Model fork() const
    {
        r2gen_ctx *forked = nullptr;
        detail::check(r2gen_ctx_fork(ctx(), &forked), nullptr);
        return Model(forked);
    }

    /* ---- the study ---- */

    void set_image_options(const r2gen_image_options &options)
    {
        check(r2gen_set_image_options(ctx(), &options));
    }

    /* Add one view: an image file, raw pixels, or an encoded image in memory. */
    void encode(const std::string &path) { check(r2gen_encode_image_file(ctx(), path.c_str())); }
    void encode(const r2gen_image &image) { check(r2gen_encode_image(ctx(), &image)); }
    void encode_memory(const void *data, std::size_t size)
    {
        check(r2gen_encode_image_memory(ctx(), data, size));
    }

    /* Start a new study: forget every view. */
    void clear() noexcept { r2gen_clear_images(ctx_.get()); }
    int n_views() const noexcept { return r2gen_n_views(ctx_.get()); }

    /* One view's Swin last_hidden_state, and the study's image embeddings. */
    Matrix view_features(int view) const
    {
        return matrix([view](const r2gen_ctx *c, float *out, std::size_t count, std::size_t *rows,
                             std::size_t *cols) {
            return r2gen_get_view_features(c, view, out, count, rows, cols);
        });
    }
    Matrix image_embeddings() const { return matrix(r2gen_get_image_embeddings); }

    /* ---- text and generation ---- */

    /* The report of the current study. */
    std::string report(const GenerateParams &params = GenerateParams())
    {
        char *text = nullptr;
        check(r2gen_generate_report(ctx(), &params, &text));
        return detail::take_string(text);
    }

    /* A report from caller-made input embeddings (n_positions x n_embd floats, <s> included). */
    std::string report_from_embeddings(const float *embeddings, std::size_t n_positions,
                                       const GenerateParams &params = GenerateParams())
    {
        char *text = nullptr;
        check(r2gen_generate_from_embeddings(ctx(), embeddings, n_positions, &params, &text));
        return detail::take_string(text);
    }

    /* The new token ids of the last generation (ending with </s> = 2 when it stopped there). */
    std::vector<int32_t> report_tokens() const
    {
        const int32_t *ids = nullptr;
        std::size_t n = 0;
        detail::check(r2gen_get_report_tokens(ctx(), &ids, &n), nullptr);
        return std::vector<int32_t>(ids, ids + n);
    }

    std::vector<int32_t> tokenize(const std::string &text) const
    {
        std::size_t n = 0;
        detail::check(r2gen_tokenize(ctx(), text.c_str(), nullptr, 0, &n), nullptr);
        std::vector<int32_t> ids(n);
        detail::check(r2gen_tokenize(ctx(), text.c_str(), ids.data(), ids.size(), &n), nullptr);
        return ids;
    }

    int n_embd() const noexcept { return r2gen_n_embd(ctx_.get()); }
    int n_vocab() const noexcept { return r2gen_n_vocab(ctx_.get()); }

private:
    explicit Model(r2gen_ctx *ctx) noexcept : ctx_(ctx) {}

    /* The context, or an Error for a moved-from Model (the C API would say only "invalid
     * argument"). */
    r2gen_ctx *ctx() const
    {
        if (!ctx_) throw Error(R2GEN_ERR_INVALID_ARGUMENT, "r2gen::Model: used after a move");
        return ctx_.get();
    }

    void check(r2gen_status status) const { detail::check(status, r2gen_last_error(ctx_.get())); }

    /* Ask a get_* function for the shape, then fill a matrix of that shape. */
    template <typename Getter> Matrix matrix(Getter getter) const
    {
        Matrix m;
        detail::check(getter(ctx(), nullptr, 0, &m.rows, &m.cols), nullptr);
        m.data.resize(m.rows * m.cols);
        detail::check(getter(ctx(), m.data.data(), m.data.size(), nullptr, nullptr), nullptr);
        return m;
    }

    std::unique_ptr<r2gen_ctx, detail::ContextDeleter> ctx_;
};

} // namespace r2gen

#endif /* R2GEN_HPP */
