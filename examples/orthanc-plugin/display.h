/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The 8-bit grey image a viewer shows for a decoded DICOM frame: the Modality LUT (rescale slope
 * and intercept), the first VOI window (or the frame's own range when there is none) and
 * MONOCHROME1 inversion, in that order (DICOM PS3.3 C.11.1, C.11.2, C.7.6.3.1.2). */
#ifndef R2GEN_ORTHANC_DISPLAY_H
#define R2GEN_ORTHANC_DISPLAY_H

#include <stddef.h>
#include <stdint.h>

typedef enum voi_function { VOI_LINEAR = 0, VOI_LINEAR_EXACT, VOI_SIGMOID } voi_function;

typedef struct display_params {
    int monochrome1;                         /* low values are white */
    double rescale_slope, rescale_intercept; /* 1 and 0 when the tags are absent */
    int has_window;                          /* a usable window (width > 0) was given */
    double window_center, window_width;
    voi_function function;
} display_params;

/* The defaults of a frame without any of the tags: MONOCHROME2, identity rescale, no window. */
display_params display_params_default(void);

/* A decoded grey frame as Orthanc gives it. */
typedef struct grey_frame {
    int bits;          /* 8 or 16 */
    int is_signed;     /* 16-bit two's complement samples */
    int width, height;
    ptrdiff_t pitch;   /* bytes from one row to the next */
    const void *pixels;
} grey_frame;

/* Write the displayed frame into out (width * height bytes, tightly packed). 0, or -1 when out of
 * memory. */
int display_to_gray8(const display_params *params, const grey_frame *frame, uint8_t *out);

#endif
