// The C++ wrapper (bindings/cpp/r2gen.hpp) on the tiny end-to-end fixture: one study's exact
// report and tokens, raw pixels against the same pixels as an encoded file, fork, move semantics
// and exceptions.
#include "r2gen.hpp"

#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

extern "C" {
#include "check.h"
}

namespace {

const char *const STUDY = "two_view_delta_iu";

std::string read_file(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// ---- just enough JSON to read one study of expected.json ----

// The position just after `"key":` at or after `from` (npos when absent).
size_t after_key(const std::string &json, size_t from, const std::string &key)
{
    size_t at = json.find("\"" + key + "\"", from);
    if (at == std::string::npos) return at;
    at = json.find(':', at);
    return at == std::string::npos ? at : json.find_first_not_of(" \n\r\t", at + 1);
}

void append_utf8(std::string &out, unsigned code)
{
    if (code < 0x80) {
        out += static_cast<char>(code);
    } else if (code < 0x800) {
        out += static_cast<char>(0xC0 | (code >> 6));
        out += static_cast<char>(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
        out += static_cast<char>(0xE0 | (code >> 12));
        out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (code & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (code >> 18));
        out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (code & 0x3F));
    }
}

// The JSON string starting at json[at] == '"'; *end is set just past its closing quote.
std::string json_string(const std::string &json, size_t at, size_t *end)
{
    std::string out;
    size_t i = at + 1;
    while (i < json.size() && json[i] != '"') {
        char c = json[i++];
        if (c != '\\') {
            out += c;
            continue;
        }
        char e = json[i++];
        switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'u': {
            unsigned code = std::stoul(json.substr(i, 4), nullptr, 16);
            i += 4;
            if (code >= 0xD800 && code < 0xDC00 && json.compare(i, 2, "\\u") == 0) {
                unsigned low = std::stoul(json.substr(i + 2, 4), nullptr, 16);
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                i += 6;
            }
            append_utf8(out, code);
            break;
        }
        default: out += e; // \" \\ \/
        }
    }
    if (end) *end = i + 1;
    return out;
}

struct Study {
    std::vector<std::string> images;
    std::vector<int32_t> new_tokens;
    std::string report;
    int num_beams = 0, min_new_tokens = 0, max_new_tokens = 0;
    double repetition_penalty = 0, length_penalty = 0;
};

bool read_study(const std::string &json, const std::string &name, Study *study)
{
    size_t at = json.find("\"name\": \"" + name + "\"");
    if (at == std::string::npos) return false;
    size_t list = after_key(json, at, "images");
    for (size_t i = json.find('"', list); i < json.find(']', list); i = json.find('"', i))
        study->images.push_back(json_string(json, i, &i));
    size_t gen = after_key(json, at, "generate");
    study->num_beams = std::stoi(json.substr(after_key(json, gen, "num_beams")));
    study->min_new_tokens = std::stoi(json.substr(after_key(json, gen, "min_new_tokens")));
    study->max_new_tokens = std::stoi(json.substr(after_key(json, gen, "max_new_tokens")));
    study->repetition_penalty = std::stod(json.substr(after_key(json, gen, "repetition_penalty")));
    study->length_penalty = std::stod(json.substr(after_key(json, gen, "length_penalty")));
    size_t tokens = after_key(json, at, "new_tokens");
    std::istringstream ids(json.substr(tokens + 1, json.find(']', tokens) - tokens - 1));
    for (std::string id; std::getline(ids, id, ',');) study->new_tokens.push_back(std::stoi(id));
    study->report = json_string(json, after_key(json, at, "report"), nullptr);
    return !study->images.empty() && !study->new_tokens.empty();
}

std::string data_path(const std::string &relative)
{
    return std::string(R2GEN_TEST_DATA_DIR) + "/r2gen-tiny/" + relative;
}

// ---- tests ----

void test_study(const std::string &model_path, const Study &study)
{
    r2gen::GenerateParams params(R2GEN_PRESET_IU_XRAY);
    CHECK(params.num_beams == study.num_beams && params.min_new_tokens == study.min_new_tokens &&
              params.max_new_tokens == study.max_new_tokens &&
              params.repetition_penalty == study.repetition_penalty &&
              params.length_penalty == study.length_penalty,
          "the IU-Xray preset gives the study's settings");
    r2gen::LoadParams load;
    load.n_threads = 1;
    r2gen::Model model = r2gen::Model::load(model_path, load);
    model.encode(data_path(study.images[0]));
    for (size_t i = 1; i < study.images.size(); i++) {
        std::string bytes = read_file(data_path(study.images[i]));
        model.encode_memory(bytes.data(), bytes.size());
    }
    CHECK(model.n_views() == static_cast<int>(study.images.size()), "%d views", model.n_views());
    std::string report = model.report(params);
    CHECK(report == study.report, "report\n  got      %s\n  expected %s", report.c_str(),
          study.report.c_str());
    CHECK(model.report_tokens() == study.new_tokens, "%zu tokens, expected %zu",
          model.report_tokens().size(), study.new_tokens.size());
    r2gen::Matrix embeddings = model.image_embeddings();
    CHECK(embeddings.rows == 49 && embeddings.cols == static_cast<size_t>(model.n_embd()) &&
              embeddings.data.size() == embeddings.rows * embeddings.cols,
          "embeddings %zu x %zu", embeddings.rows, embeddings.cols);

    // A fork has its own, empty study on the same weights and reproduces the report.
    r2gen::Model forked = model.fork();
    CHECK(forked.n_views() == 0, "a fork starts with an empty study");
    for (const std::string &image : study.images) forked.encode(data_path(image));
    CHECK(forked.report(params) == study.report, "the fork's report");
    CHECK(forked.report_tokens() == study.new_tokens, "the fork's tokens");
}

// Raw gray8 pixels and the same pixels as a PGM file in memory give the same view.
void test_raw_pixels(const std::string &model_path)
{
    r2gen::Model model(model_path);
    const int width = 61, height = 47;
    std::vector<uint8_t> pixels(static_cast<size_t>(width) * height);
    for (size_t i = 0; i < pixels.size(); i++) pixels[i] = static_cast<uint8_t>((i * 37) % 251);
    r2gen::Image image;
    image.format = R2GEN_PIXEL_GRAY8;
    image.width = width;
    image.height = height;
    image.pixels = pixels.data();
    model.encode(image);
    std::string pgm = "P5\n" + std::to_string(width) + " " + std::to_string(height) + "\n255\n";
    pgm.append(pixels.begin(), pixels.end());
    model.encode_memory(pgm.data(), pgm.size());
    r2gen::Matrix raw = model.view_features(0), file = model.view_features(1);
    CHECK(raw.rows == 49 && raw.cols == file.cols && !raw.data.empty(), "features %zu x %zu",
          raw.rows, raw.cols);
    CHECK(raw.data == file.data, "raw pixels and their PGM give the same features");
    model.clear();
    CHECK(model.n_views() == 0, "clear() empties the study");
}

template <typename F> r2gen_status status_of(F &&call)
{
    try {
        call();
    } catch (const r2gen::Error &e) {
        CHECK(*e.what() != '\0', "an error has a message");
        return e.status();
    }
    return R2GEN_OK;
}

void test_moves_and_errors(const std::string &model_path, const Study &study)
{
    r2gen::Model a(model_path);
    std::vector<int32_t> ids = a.tokenize("Human: <Img>");
    r2gen::Model b = std::move(a);
    CHECK(!a && b, "moving leaves the source empty");
    CHECK(b.tokenize("Human: <Img>") == ids && !ids.empty(), "the moved-to model works");
    CHECK(status_of([&] { a.encode(data_path(study.images[0])); }) == R2GEN_ERR_INVALID_ARGUMENT,
          "a moved-from model throws");
    r2gen::Model c(model_path);
    c = std::move(b);
    CHECK(c && !b, "move assignment");

    r2gen_status missing = status_of([&] { r2gen::Model m("/nonexistent/model.gguf"); });
    CHECK(missing == R2GEN_ERR_IO, "loading a missing file: %s", r2gen_status_string(missing));
    try {
        r2gen::Model m("/nonexistent/model.gguf");
    } catch (const std::runtime_error &e) {
        CHECK(std::string(e.what()).find("/nonexistent/model.gguf") != std::string::npos,
              "the message names the file: %s", e.what());
    }
    r2gen_status bad_image = status_of([&] { c.encode("/nonexistent/image.png"); });
    CHECK(bad_image == R2GEN_ERR_IO || bad_image == R2GEN_ERR_IMAGE, "a missing image: %s",
          r2gen_status_string(bad_image));
    const char garbage[] = "not an image";
    CHECK(status_of([&] { c.encode_memory(garbage, sizeof garbage); }) == R2GEN_ERR_IMAGE,
          "undecodable bytes");
    CHECK(status_of([&] { c.report(); }) == R2GEN_ERR_NO_IMAGE, "a report without a view");
    CHECK(status_of([&] { c.image_embeddings(); }) == R2GEN_ERR_NO_IMAGE, "no embeddings yet");
    CHECK(status_of([&] { c.view_features(0); }) == R2GEN_ERR_INVALID_ARGUMENT, "no view 0");
    r2gen::GenerateParams zero_beams;
    zero_beams.num_beams = 0;
    c.encode(data_path(study.images[0]));
    CHECK(status_of([&] { c.report(zero_beams); }) == R2GEN_ERR_INVALID_ARGUMENT, "num_beams 0");
}

} // namespace

int main()
{
    const std::string model_path = std::string(R2GEN_TEST_MODELS_DIR) + "/r2gen-tiny-delta-f32.gguf";
    if (!std::ifstream(model_path)) {
        std::printf("skipping: %s is missing (made by the r2gen_tiny_models test fixture)\n",
                    model_path.c_str());
        return TEST_SKIP_STATUS;
    }
    Study study;
    if (!read_study(read_file(data_path("expected.json")), STUDY, &study)) {
        std::fprintf(stderr, "study %s not found in expected.json\n", STUDY);
        return 1;
    }
    CHECK(!r2gen::version().empty(), "a version string");
    try {
        test_study(model_path, study);
        test_raw_pixels(model_path);
        test_moves_and_errors(model_path, study);
    } catch (const r2gen::Error &e) {
        CHECK(false, "unexpected r2gen::Error (%s): %s", r2gen_status_string(e.status()), e.what());
    }
    return check_summary();
}
