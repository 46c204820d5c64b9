#include "image_test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint8_t *read_whole_file(const char *path, size_t *size)
{
    FILE *file = fopen(path, "rb");
    if (!file) {
        fprintf(stderr, "cannot open %s\n", path);
        return NULL;
    }
    fseek(file, 0, SEEK_END);
    long length = ftell(file);
    fseek(file, 0, SEEK_SET);
    uint8_t *data = length > 0 ? malloc((size_t)length) : NULL;
    if (!data || fread(data, 1, (size_t)length, file) != (size_t)length) {
        fprintf(stderr, "cannot read %s\n", path);
        free(data);
        data = NULL;
    }
    fclose(file);
    *size = data ? (size_t)length : 0;
    return data;
}

void byte_buffer_append(byte_buffer *buffer, const void *data, size_t size)
{
    if (buffer->size + size > buffer->capacity) {
        size_t capacity = (buffer->size + size) * 2;
        uint8_t *grown = realloc(buffer->data, capacity);
        if (!grown) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
        buffer->data = grown;
        buffer->capacity = capacity;
    }
    memcpy(buffer->data + buffer->size, data, size);
    buffer->size += size;
}

void byte_buffer_write(void *context, void *data, int size)
{
    byte_buffer_append(context, data, (size_t)size);
}

void byte_buffer_free(byte_buffer *buffer)
{
    free(buffer->data);
    memset(buffer, 0, sizeof *buffer);
}

static void append_be32(byte_buffer *buffer, uint32_t v)
{
    uint8_t bytes[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    byte_buffer_append(buffer, bytes, 4);
}

static uint32_t crc32_update(uint32_t crc, const uint8_t *data, size_t size)
{
    crc = ~crc;
    for (size_t i = 0; i < size; i++) {
        crc ^= data[i];
        for (int bit = 0; bit < 8; bit++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

static void append_chunk(byte_buffer *png, const char type[4], const uint8_t *data, size_t size)
{
    append_be32(png, (uint32_t)size);
    size_t start = png->size;
    byte_buffer_append(png, type, 4);
    if (size) byte_buffer_append(png, data, size);
    append_be32(png, crc32_update(0, png->data + start, size + 4));
}

/* zlib stream of stored (uncompressed) deflate blocks. */
static void zlib_store(byte_buffer *out, const uint8_t *data, size_t size)
{
    const uint8_t header[2] = {0x78, 0x01};
    byte_buffer_append(out, header, 2);
    size_t pos = 0;
    do {
        size_t n = size - pos > 65535 ? 65535 : size - pos;
        uint8_t block[5] = {(uint8_t)(pos + n == size), (uint8_t)n, (uint8_t)(n >> 8),
                            (uint8_t)~n, (uint8_t)(~n >> 8)};
        byte_buffer_append(out, block, 5);
        byte_buffer_append(out, data + pos, n);
        pos += n;
    } while (pos < size);
    uint32_t a = 1, b = 0;
    for (size_t i = 0; i < size; i++) {
        a = (a + data[i]) % 65521;
        b = (b + a) % 65521;
    }
    append_be32(out, b << 16 | a);
}

void png16_encode(byte_buffer *png, int width, int height, int colour_type,
                  const uint16_t *samples, int trns_grey)
{
    const int channels = colour_type == 0 ? 1 : colour_type == 2 ? 3 : colour_type == 4 ? 2 : 4;
    const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    byte_buffer_append(png, signature, 8);
    uint8_t ihdr[13] = {(uint8_t)(width >> 24), (uint8_t)(width >> 16), (uint8_t)(width >> 8),
                        (uint8_t)width, (uint8_t)(height >> 24), (uint8_t)(height >> 16),
                        (uint8_t)(height >> 8), (uint8_t)height, 16, (uint8_t)colour_type, 0, 0, 0};
    append_chunk(png, "IHDR", ihdr, sizeof ihdr);
    if (trns_grey >= 0) {
        uint8_t trns[2] = {(uint8_t)(trns_grey >> 8), (uint8_t)trns_grey};
        append_chunk(png, "tRNS", trns, 2);
    }
    /* Filter type 0 per row, samples big-endian. */
    byte_buffer raw = {0};
    for (int y = 0; y < height; y++) {
        const uint8_t filter = 0;
        byte_buffer_append(&raw, &filter, 1);
        for (int i = 0; i < width * channels; i++) {
            uint16_t v = samples[(size_t)y * width * channels + i];
            uint8_t be[2] = {(uint8_t)(v >> 8), (uint8_t)v};
            byte_buffer_append(&raw, be, 2);
        }
    }
    byte_buffer idat = {0};
    zlib_store(&idat, raw.data, raw.size);
    append_chunk(png, "IDAT", idat.data, idat.size);
    append_chunk(png, "IEND", NULL, 0);
    byte_buffer_free(&raw);
    byte_buffer_free(&idat);
}

uint32_t test_random(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}
