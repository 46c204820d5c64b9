/* The public header on its own, in C89, C11 and C++17 (header_check.cpp includes this file):
 * tests/header/CMakeLists.txt compiles each with -pedantic-errors -Werror, so a declaration that
 * is not valid in one of them fails the build. Then each checks at run time that it sees the same
 * struct layouts (struct_size) and version as the library it is linked to.
 * Written in C89 that is also C++: declarations first, no // comments, explicit casts. */
#include "r2gen.h"
#include "r2gen.h" /* the include guard makes a second inclusion harmless */

#include <stdio.h>
#include <string.h>

#if defined(__cplusplus)
#define LANGUAGE "c++17"
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define LANGUAGE "c11"
#else
#define LANGUAGE "c89"
#endif

static int n_passed, n_failed;

static void check(int ok, const char *what)
{
    if (ok) {
        n_passed++;
    } else {
        n_failed++;
        printf("FAILED (%s): %s\n", LANGUAGE, what);
    }
}

int main(void)
{
    r2gen_load_params load = r2gen_load_params_default();
    r2gen_image image = r2gen_image_default();
    r2gen_image_options image_options = r2gen_image_options_default();
    r2gen_generate_params generate = r2gen_generate_params_default();
    r2gen_generate_params iu = r2gen_generate_params_preset(R2GEN_PRESET_IU_XRAY);
    char header_version[32];

    check(load.struct_size == sizeof load, "r2gen_load_params has the library's size");
    check(image.struct_size == sizeof image, "r2gen_image has the library's size");
    check(image_options.struct_size == sizeof image_options,
          "r2gen_image_options has the library's size");
    check(generate.struct_size == sizeof generate, "r2gen_generate_params has the library's size");
    check(iu.struct_size == sizeof iu, "a preset's r2gen_generate_params has the library's size");

    sprintf(header_version, "%d.%d.%d", R2GEN_VERSION_MAJOR, R2GEN_VERSION_MINOR,
            R2GEN_VERSION_PATCH);
    check(strncmp(r2gen_version(), header_version, strlen(header_version)) == 0,
          "r2gen_version() begins with the header's version");
    check(R2GEN_VERSION_NUMBER == R2GEN_VERSION_MAJOR * 10000 + R2GEN_VERSION_MINOR * 100 +
                                      R2GEN_VERSION_PATCH,
          "R2GEN_VERSION_NUMBER encodes the version");
    check(strcmp(r2gen_status_string(R2GEN_OK), r2gen_status_string(R2GEN_ERR_INTERNAL)) != 0,
          "status strings link and differ");

    printf("header %s: %d passed, %d failed\n", LANGUAGE, n_passed, n_failed);
    return n_failed == 0 ? 0 : 1;
}
