// r2gen-report-cpp: write the radiology report of one study with the C++ wrapper.
//
//   r2gen-report-cpp [--preset mimic|iu] [--threads N] [--llm LLAMA.gguf] [--greedy]
//                    MODEL.gguf IMAGE [IMAGE ...]
//
// Every IMAGE is one view of the study (R2GenGPT averages the views, as for IU-Xray's frontal +
// lateral pairs). The report goes to stdout; errors go to stderr with exit status 1.
#include "r2gen.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Options {
    r2gen_preset preset = R2GEN_PRESET_MIMIC_CXR;
    int threads = 0; // all online CPUs
    const char *llm = nullptr;
    bool greedy = false;
    const char *model = nullptr;
    std::vector<std::string> images;
};

int usage(const char *program)
{
    std::fprintf(stderr,
                 "usage: %s [--preset mimic|iu] [--threads N] [--llm LLAMA.gguf] [--greedy] "
                 "MODEL.gguf IMAGE [IMAGE ...]\n",
                 program);
    return 2;
}

// Options from argv; false on a usage error.
bool parse(int argc, char **argv, Options *options)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        bool has_value = i + 1 < argc;
        if (!std::strcmp(arg, "--preset") && has_value) {
            const char *name = argv[++i];
            if (!std::strcmp(name, "mimic")) options->preset = R2GEN_PRESET_MIMIC_CXR;
            else if (!std::strcmp(name, "iu")) options->preset = R2GEN_PRESET_IU_XRAY;
            else return false;
        } else if (!std::strcmp(arg, "--threads") && has_value) {
            options->threads = std::atoi(argv[++i]);
        } else if (!std::strcmp(arg, "--llm") && has_value) {
            options->llm = argv[++i];
        } else if (!std::strcmp(arg, "--greedy")) {
            options->greedy = true;
        } else if (arg[0] == '-' && arg[1] == '-') {
            return false;
        } else if (!options->model) {
            options->model = arg;
        } else {
            options->images.push_back(arg);
        }
    }
    return options->model && !options->images.empty();
}

} // namespace

int main(int argc, char **argv)
{
    Options options;
    if (!parse(argc, argv, &options)) return usage(argv[0]);
    try {
        r2gen::LoadParams load;
        load.n_threads = options.threads;
        load.llm_path = options.llm;
        r2gen::Model model(options.model, load);
        for (const std::string &image : options.images) model.encode(image);
        r2gen::GenerateParams params(options.preset);
        if (options.greedy) params.num_beams = 1;
        std::printf("%s\n", model.report(params).c_str());
    } catch (const r2gen::Error &e) {
        std::fprintf(stderr, "r2gen-report-cpp: %s (%s)\n", e.what(),
                     r2gen_status_string(e.status()));
        return 1;
    }
    return 0;
}
