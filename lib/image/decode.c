/* Encoded images -> RGB8: format recognition, stb_image for PNG and BMP, our own binary PGM/PPM
 * reader (stb_image 2.27 neither byte-swaps 16-bit PNM samples nor reports truncated ones, and PIL
 * rescales by maxval), libjpeg-turbo for JPEG (jpeg.c), and reading whole files. */
#define _POSIX_C_SOURCE 200809L

#include "image/image_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <stb/stb_image.h>

typedef enum file_format { FORMAT_UNKNOWN, FORMAT_PNG, FORMAT_JPEG, FORMAT_BMP, FORMAT_PNM } file_format;

static file_format sniff_format(const uint8_t *data, size_t size)
{
    if (size >= 8 && !memcmp(data, "\x89PNG\r\n\x1a\n", 8)) return FORMAT_PNG;
    if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return FORMAT_JPEG;
    if (size >= 2 && data[0] == 'B' && data[1] == 'M') return FORMAT_BMP;
    if (size >= 2 && data[0] == 'P' && (data[1] == '5' || data[1] == '6')) return FORMAT_PNM;
    return FORMAT_UNKNOWN;
}

static uint32_t read_le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t read_le32(const uint8_t *p) { return read_le16(p) | read_le16(p + 2) << 16; }

/* stb_image zero-fills a BMP whose pixel data is cut short; PIL reports it truncated, and so do
 * we. Only uncompressed layouts have a known length (stb_image rejects RLE anyway). */
static r2gen_status check_bmp_length(const uint8_t *data, size_t size, int width, int height,
                                     error *err)
{
    uint32_t header_bytes = size >= 18 ? read_le32(data + 14) : 0;
    size_t fields_end = header_bytes == 12 ? 26 : 34;
    if (size < fields_end) return error_set(err, R2GEN_ERR_IMAGE, "BMP: truncated header");
    uint32_t bits_per_pixel = read_le16(data + (header_bytes == 12 ? 24 : 28));
    uint32_t compression = header_bytes == 12 ? 0 : read_le32(data + 30);
    if (compression != 0 && compression != 3 && compression != 6) return R2GEN_OK;
    uint64_t row_bytes = ((uint64_t)width * bits_per_pixel + 31) / 32 * 4;
    uint64_t needed = (uint64_t)read_le32(data + 10) + row_bytes * (uint64_t)height;
    if (needed > size)
        return error_set(err, R2GEN_ERR_IMAGE, "BMP: truncated (%zu of %llu bytes)", size,
                         (unsigned long long)needed);
    return R2GEN_OK;
}

static r2gen_status decode_stb(const uint8_t *data, size_t size, file_format format,
                               const char *what, const image_options *options, rgb_image *out,
                               error *err)
{
    if (size > INT_MAX)
        return error_set(err, R2GEN_ERR_IMAGE, "%s: %zu bytes is too large to decode", what, size);
    int width, height, channels;
    if (!stbi_info_from_memory(data, (int)size, &width, &height, &channels))
        return error_set(err, R2GEN_ERR_IMAGE,
                         "%s: corrupt header, or a side over the limit of %d pixels", what,
                         IMAGE_MAX_SIDE);
    r2gen_status status = image_check_size(width, height, R2GEN_ERR_IMAGE, what, err);
    if (status == R2GEN_OK && format == FORMAT_BMP)
        status = check_bmp_length(data, size, width, height, err);
    if (status != R2GEN_OK) return status;

    int sixteen = stbi_is_16_bit_from_memory(data, (int)size);
    image_stb_allocation_failed(); /* clear */
    void *pixels = sixteen ? (void *)stbi_load_16_from_memory(data, (int)size, &width, &height,
                                                               &channels, 0)
                           : (void *)stbi_load_from_memory(data, (int)size, &width, &height,
                                                           &channels, 0);
    if (!pixels) {
        if (image_stb_allocation_failed())
            return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "%s: out of memory decoding %dx%d",
                             what, width, height);
        return error_set(err, R2GEN_ERR_IMAGE, "%s: corrupt or truncated data", what);
    }
    uint8_t *table = malloc(SAMPLE_TABLE_SIZE);
    if (!table) {
        stbi_image_free(pixels);
        return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory for a sample table");
    }
    int bytes = sixteen ? 2 : 1;
    sample_rows rows = {pixels, (size_t)width * channels * bytes, width, height, channels, bytes, 0};
    /* PIL opens only 16-bit grey (IHDR colour type 0, with or without tRNS) as mode I and clamps
     * it; 16-bit grey+alpha and colour become 8-bit modes keeping the high byte. */
    if (!sixteen)
        sample_table_identity(table);
    else if (format == FORMAT_PNG && data[25] == 0)
        sample_table_gray16(options, &rows, 0, table);
    else
        sample_table_high_byte(table);
    status = samples_to_rgb(&rows, table, out, err);
    free(table);
    stbi_image_free(pixels);
    return status;
}

typedef struct pnm_header {
    int channels; /* P5: 1, P6: 3 */
    int width, height, maxval;
    size_t data_offset;
} pnm_header;

static int pnm_is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Next decimal token after whitespace and '#' comments; -1 if absent or over 10 digits. */
static int64_t pnm_token(const uint8_t *data, size_t size, size_t *pos)
{
    size_t i = *pos;
    for (;;) {
        while (i < size && pnm_is_space(data[i])) i++;
        if (i >= size || data[i] != '#') break;
        while (i < size && data[i] != '\n' && data[i] != '\r') i++;
    }
    int64_t value = 0;
    int digits = 0;
    for (; i < size && data[i] >= '0' && data[i] <= '9'; i++, digits++) {
        if (digits == 10) return -1;
        value = value * 10 + (data[i] - '0');
    }
    *pos = i;
    return digits ? value : -1;
}

static r2gen_status pnm_read_header(const uint8_t *data, size_t size, pnm_header *header,
                                    error *err)
{
    size_t pos = 2;
    int64_t width = pnm_token(data, size, &pos);
    int64_t height = pnm_token(data, size, &pos);
    int64_t maxval = pnm_token(data, size, &pos);
    if (width < 0 || height < 0 || maxval < 0 || pos >= size || !pnm_is_space(data[pos]))
        return error_set(err, R2GEN_ERR_IMAGE, "PGM/PPM: corrupt or truncated header");
    if (maxval < 1 || maxval > 65535)
        return error_set(err, R2GEN_ERR_IMAGE, "PGM/PPM: maxval %lld outside 1..65535",
                         (long long)maxval);
    r2gen_status status = image_check_size(width, height, R2GEN_ERR_IMAGE, "PGM/PPM", err);
    if (status != R2GEN_OK) return status;
    header->channels = data[1] == '5' ? 1 : 3;
    header->width = (int)width;
    header->height = (int)height;
    header->maxval = (int)maxval;
    header->data_offset = pos + 1; /* one whitespace byte ends the header */
    return R2GEN_OK;
}

/* PIL 9.4: P5 with maxval > 255 opens as mode I (rescaled to 0..65535 unless maxval is 65535,
 * then the grey16 mapping); everything else is rescaled to 0..255 unless maxval is 255. */
static r2gen_status decode_pnm(const uint8_t *data, size_t size, const image_options *options,
                               rgb_image *out, error *err)
{
    pnm_header header = {0};
    r2gen_status status = pnm_read_header(data, size, &header, err);
    if (status != R2GEN_OK) return status;
    int bytes = header.maxval > 255 ? 2 : 1;
    size_t row_bytes = (size_t)header.width * header.channels * bytes;
    size_t needed = row_bytes * header.height;
    if (size - header.data_offset < needed)
        return error_set(err, R2GEN_ERR_IMAGE, "PGM/PPM: truncated (%zu of %zu bytes of pixels)",
                         size - header.data_offset, needed);
    uint8_t *table = malloc(SAMPLE_TABLE_SIZE);
    if (!table) return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory for a sample table");
    sample_rows rows = {data + header.data_offset, row_bytes, header.width, header.height,
                        header.channels, bytes, 1};
    if (header.channels == 1 && bytes == 2) {
        sample_table_gray16(options, &rows, header.maxval, table);
    } else {
        int n_values = bytes == 2 ? SAMPLE_TABLE_SIZE : 256;
        for (int v = 0; v < n_values; v++)
            table[v] = (uint8_t)pnm_rescale(v, header.maxval, 255);
    }
    status = samples_to_rgb(&rows, table, out, err);
    free(table);
    return status;
}

r2gen_status image_decode_memory(const void *data, size_t size, const image_options *options,
                                 rgb_image *out, error *err)
{
    if (!out) return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "image: NULL output image");
    memset(out, 0, sizeof *out);
    if (!data || size == 0)
        return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "image: no data (%s)",
                         data ? "zero bytes" : "NULL pointer");
    image_options resolved;
    r2gen_status status = image_options_resolve(options, &resolved, err);
    if (status != R2GEN_OK) return status;
    const uint8_t *bytes = data;
    file_format format = sniff_format(bytes, size);
    switch (format) {
    case FORMAT_PNG:
        return decode_stb(bytes, size, format, "PNG", &resolved, out, err);
    case FORMAT_BMP:
        return decode_stb(bytes, size, format, "BMP", &resolved, out, err);
    case FORMAT_JPEG:
#ifdef R2GEN_HAVE_LIBJPEG
        return jpeg_decode_memory(bytes, size, out, err);
#else
        return decode_stb(bytes, size, format, "JPEG", &resolved, out, err);
#endif
    case FORMAT_PNM:
        return decode_pnm(bytes, size, &resolved, out, err);
    default:
        break;
    }
    uint8_t head[4] = {0};
    memcpy(head, bytes, size < 4 ? size : 4);
    return error_set(err, R2GEN_ERR_IMAGE,
                     "unrecognised image data (starts %02x %02x %02x %02x): supported formats are "
                     "PNG, JPEG, BMP and binary PGM/PPM",
                     head[0], head[1], head[2], head[3]);
}

static r2gen_status io_error(error *err, const char *doing, const char *path)
{
    char reason[128] = "unknown error";
    strerror_r(errno, reason, sizeof reason);
    return error_set(err, R2GEN_ERR_IO, "cannot %s image file '%s': %s", doing, path, reason);
}

r2gen_status image_decode_file(const char *path, const image_options *options, rgb_image *out,
                               error *err)
{
    if (!out) return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "image: NULL output image");
    memset(out, 0, sizeof *out);
    if (!path) return error_set(err, R2GEN_ERR_INVALID_ARGUMENT, "image: NULL file path");
    FILE *file = fopen(path, "rb");
    if (!file) return io_error(err, "open", path);
    struct stat info;
    if (fstat(fileno(file), &info) != 0) {
        r2gen_status status = io_error(err, "stat", path);
        fclose(file);
        return status;
    }
    if (!S_ISREG(info.st_mode) || info.st_size <= 0 ||
        (uint64_t)info.st_size > IMAGE_MAX_FILE_BYTES) {
        fclose(file);
        if (!S_ISREG(info.st_mode))
            return error_set(err, R2GEN_ERR_IO, "image file '%s' is not a regular file", path);
        return error_set(err, R2GEN_ERR_IMAGE, "image file '%s' is %s (%lld bytes)", path,
                         info.st_size <= 0 ? "empty" : "too large", (long long)info.st_size);
    }
    size_t size = (size_t)info.st_size;
    uint8_t *contents = malloc(size);
    if (!contents) {
        fclose(file);
        return error_set(err, R2GEN_ERR_OUT_OF_MEMORY, "out of memory reading '%s' (%zu bytes)",
                         path, size);
    }
    size_t got = fread(contents, 1, size, file);
    r2gen_status status = R2GEN_OK;
    if (got != size)
        status = ferror(file) ? io_error(err, "read", path)
                              : error_set(err, R2GEN_ERR_IO, "image file '%s' shrank while being "
                                          "read (%zu of %zu bytes)", path, got, size);
    fclose(file);
    if (status == R2GEN_OK) {
        status = image_decode_memory(contents, size, options, out, err);
        if (status != R2GEN_OK) error_prefix(err, "%s: ", path);
    }
    free(contents);
    return status;
}
