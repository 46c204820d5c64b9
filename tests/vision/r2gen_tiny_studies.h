/* The studies of tests/data/r2gen-tiny/expected.json that the vision tests use: which checkpoint
 * flavour, which images (views, averaged in this order) and which reference files. */
#ifndef R2GEN_TESTS_R2GEN_TINY_STUDIES_H
#define R2GEN_TESTS_R2GEN_TINY_STUDIES_H

#define STUDY_MAX_VIEWS 2

typedef struct study_view {
    const char *image;    /* under tests/data/r2gen-tiny/images */
    const char *features; /* expected Swin last_hidden_state, under expected/ */
} study_view;

typedef struct study {
    const char *name; /* expected/embeddings_<name>.npy */
    const char *flavour;
    int n_views;
    study_view views[STUDY_MAX_VIEWS];
} study;

static const study r2gen_tiny_studies[] = {
    {"frontal_shallow_mimic", "shallow", 1, {{"frontal_gray8.png", "features_shallow_frontal"}}},
    {"two_view_delta_iu",
     "delta",
     2,
     {{"frontal_gray8.png", "features_delta_frontal"},
      {"lateral_gray8.jpg", "features_delta_lateral"}}},
    {"rgb_deep_greedy", "deep", 1, {{"tinted_rgb8.png", "features_deep_rgb"}}},
    {"two_view_shallow_short",
     "shallow",
     2,
     {{"lateral_gray8.jpg", "features_shallow_lateral"},
      {"frontal_gray8.png", "features_shallow_frontal"}}},
};

#define R2GEN_TINY_N_STUDIES (int)(sizeof r2gen_tiny_studies / sizeof r2gen_tiny_studies[0])

/* The conversion of a flavour to a weight type ("r2gen-tiny-<flavour>-<type>.gguf"), written by
 * the ctest fixtures into the tests' directory. */
#define R2GEN_TINY_GGUF_FORMAT "r2gen-tiny-%s-%s.gguf"

#endif
