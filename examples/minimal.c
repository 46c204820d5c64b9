/* The smallest complete use of libr2gen: load a model, add two views of a study, print the
 * report. Build: cc minimal.c -lr2gen. Run: ./minimal model.gguf frontal.png lateral.png */
#include <stdio.h>

#include "r2gen.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf IMAGE [IMAGE...]\n", argv[0]);
        return 2;
    }
    r2gen_ctx *ctx = NULL;
    if (r2gen_load(argv[1], NULL, &ctx) != R2GEN_OK) {
        fprintf(stderr, "load: %s\n", r2gen_last_error(NULL));
        return 1;
    }
    for (int i = 2; i < argc; i++) {
        if (r2gen_encode_image_file(ctx, argv[i]) != R2GEN_OK) {
            fprintf(stderr, "%s: %s\n", argv[i], r2gen_last_error(ctx));
            r2gen_free(ctx);
            return 1;
        }
    }
    char *report = NULL;
    r2gen_status status = r2gen_generate_report(ctx, NULL, &report); /* MIMIC-CXR settings */
    if (status == R2GEN_OK) printf("%s\n", report);
    else fprintf(stderr, "report: %s\n", r2gen_last_error(ctx));
    r2gen_string_free(report);
    r2gen_free(ctx);
    return status == R2GEN_OK ? 0 : 1;
}
