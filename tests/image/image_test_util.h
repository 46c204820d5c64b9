/* Helpers shared by the image tests: whole files in memory, in-memory writers for
 * stb_image_write, and a minimal 16-bit PNG encoder (stb_image_write only writes 8 bits). */
#ifndef R2GEN_TESTS_IMAGE_UTIL_H
#define R2GEN_TESTS_IMAGE_UTIL_H

#include <stddef.h>
#include <stdint.h>

typedef struct byte_buffer {
    uint8_t *data;
    size_t size, capacity;
} byte_buffer;

/* Whole file, malloc'ed; NULL (after printing why) when unreadable. */
uint8_t *read_whole_file(const char *path, size_t *size);

/* stbi_write_func that appends to a byte_buffer (context); exits on out of memory. */
void byte_buffer_write(void *context, void *data, int size);
void byte_buffer_append(byte_buffer *buffer, const void *data, size_t size);
void byte_buffer_free(byte_buffer *buffer);

/* A PNG of 16-bit samples: colour_type 0 grey, 2 RGB, 4 grey+alpha, 6 RGBA; samples are
 * height x width x channels host-order values. trns_grey >= 0 adds a tRNS chunk (grey only). */
void png16_encode(byte_buffer *png, int width, int height, int colour_type,
                  const uint16_t *samples, int trns_grey);

/* Deterministic pseudo-random bytes (xorshift). */
uint32_t test_random(uint32_t *state);

#endif
