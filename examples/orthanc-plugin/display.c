/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "display.h"

#include <math.h>
#include <stdlib.h>

display_params display_params_default(void)
{
    display_params p = {0};
    p.rescale_slope = 1.0;
    return p;
}

static int32_t stored_value(const grey_frame *f, int x, int y)
{
    const uint8_t *row = (const uint8_t *)f->pixels + (ptrdiff_t)y * f->pitch;
    if (f->bits == 8) return row[x];
    uint16_t v = ((const uint16_t *)row)[x];
    return f->is_signed ? (int32_t)(int16_t)v : (int32_t)v;
}

/* The VOI functions of PS3.3 C.11.2.1.2 onto 0..255, before rounding. */
static double apply_window(const display_params *p, double x)
{
    double c = p->window_center, w = p->window_width;
    switch (p->function) {
    case VOI_LINEAR_EXACT:
        return (x - c) / w * 255.0 + 127.5;
    case VOI_SIGMOID:
        return 255.0 / (1.0 + exp(-4.0 * (x - c) / w));
    case VOI_LINEAR:
    default:
        /* LINEAR needs width >= 1; at exactly 1 it is a step at c - 0.5. */
        if (x <= c - 0.5 - (w - 1.0) / 2.0) return 0.0;
        if (x > c - 0.5 + (w - 1.0) / 2.0) return 255.0;
        return ((x - (c - 0.5)) / (w - 1.0) + 0.5) * 255.0;
    }
}

static uint8_t to_byte(double y)
{
    if (!(y > 0.0)) return 0; /* also NaN */
    if (y >= 255.0) return 255;
    return (uint8_t)floor(y + 0.5);
}

/* Without a window a viewer spreads the frame's own range of rescaled values over 0..255; an 8-bit
 * frame is shown as its rescaled values. */
static void frame_range(const grey_frame *f, const display_params *p, double *lo, double *hi)
{
    int32_t min = INT32_MAX, max = INT32_MIN;
    for (int y = 0; y < f->height; y++)
        for (int x = 0; x < f->width; x++) {
            int32_t v = stored_value(f, x, y);
            if (v < min) min = v;
            if (v > max) max = v;
        }
    double a = min * p->rescale_slope + p->rescale_intercept;
    double b = max * p->rescale_slope + p->rescale_intercept;
    *lo = a < b ? a : b;
    *hi = a < b ? b : a;
}

/* One output byte per possible stored value (256 or 65536 of them), then one lookup per pixel. */
int display_to_gray8(const display_params *p, const grey_frame *f, uint8_t *out)
{
    size_t n = f->bits == 16 ? 65536 : 256;
    uint8_t *table = malloc(n);
    if (!table) return -1;
    double lo = 0, hi = 0;
    int stretch = !p->has_window && f->bits == 16;
    if (stretch) frame_range(f, p, &lo, &hi);
    for (size_t i = 0; i < n; i++) {
        int32_t stored = f->is_signed ? (int32_t)(int16_t)(uint16_t)i : (int32_t)i;
        double x = stored * p->rescale_slope + p->rescale_intercept;
        double shown = p->has_window ? apply_window(p, x)
                       : stretch     ? (hi > lo ? (x - lo) / (hi - lo) * 255.0 : 0.0)
                                     : x;
        uint8_t v = to_byte(shown);
        table[i] = p->monochrome1 ? (uint8_t)(255 - v) : v;
    }
    for (int y = 0; y < f->height; y++) {
        const uint8_t *row = (const uint8_t *)f->pixels + (ptrdiff_t)y * f->pitch;
        uint8_t *dst = out + (size_t)y * (size_t)f->width;
        if (f->bits == 8)
            for (int x = 0; x < f->width; x++) dst[x] = table[row[x]];
        else
            for (int x = 0; x < f->width; x++) dst[x] = table[((const uint16_t *)row)[x]];
    }
    free(table);
    return 0;
}
