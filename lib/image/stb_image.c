/* stb_image, compiled into the library from Debian's libstb-dev header (the code of libstb.so)
 * instead of calling the shared libstb, so that:
 * - its own limit is set here: STBI_MAX_DIMENSIONS is IMAGE_MAX_SIDE, not 2^24;
 * - its internal asserts can never abort the host;
 * - it has no writable global state: without failure strings it no longer writes the name of an
 *   unknown PNG chunk into a static buffer (a data race between threads in a shared build);
 * - its allocations go through the library's malloc (allocation-failure tests reach them) and a
 *   failed one is told apart from corrupt data by a thread-local flag;
 * - the decoder of untrusted PNG and BMP files is built with the rest of the library (sanitizers,
 *   fuzzing coverage).
 * Only the decoders decode.c uses are compiled; nothing reads files (decode.c reads them). The
 * stbi_* symbols stay inside libr2gen.so (-fvisibility=hidden and the version script). */
#include "image/image_internal.h"

#include <stdlib.h>

static _Thread_local int allocation_failed;

static void *stb_malloc(size_t size)
{
    void *p = malloc(size);
    if (!p) allocation_failed = 1;
    return p;
}

static void *stb_realloc(void *old, size_t size)
{
    void *p = realloc(old, size);
    if (!p) allocation_failed = 1;
    return p;
}

int image_stb_allocation_failed(void)
{
    int failed = allocation_failed;
    allocation_failed = 0;
    return failed;
}

#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_NO_FAILURE_STRINGS
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#ifndef R2GEN_HAVE_LIBJPEG
#define STBI_ONLY_JPEG
#endif
#define STBI_MAX_DIMENSIONS IMAGE_MAX_SIDE
/* Its asserts check invariants of its own state, not the input; never abort a host over them. */
#define STBI_ASSERT(x) ((void)0)
#define STBI_MALLOC(size) stb_malloc(size)
#define STBI_REALLOC(p, size) stb_realloc(p, size)
#define STBI_FREE(p) free(p)

#include <stb/stb_image.h>
