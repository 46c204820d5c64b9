#include "test_paths.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

const char *test_data_path(char *buf, size_t size, const char *relative)
{
    snprintf(buf, size, "%s/%s", R2GEN_TEST_DATA_DIR, relative);
    return buf;
}

const char *shared_data_path(char *buf, size_t size, const char *relative)
{
    const char *root = getenv("R2GEN_SHARED_DATA");
    if (root && *root)
        snprintf(buf, size, "%s/%s", root, relative);
    else
        snprintf(buf, size, "%s/../shared/data/%s", R2GEN_SOURCE_DIR, relative);
    if (access(buf, R_OK) == 0) return buf;
    printf("skipping: %s is absent (third-party data; set R2GEN_SHARED_DATA to its folder)\n", buf);
    return NULL;
}

const char *scratch_path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "scratch-%ld-%s", (long)getpid(), name);
    return buf;
}
