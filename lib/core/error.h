/* Error reporting inside the library: a status plus a message, written into a caller-owned buffer.
 * Every internal function that can fail returns an r2gen_status and, on failure, has filled the
 * error it was handed; api.c copies the message into the context or the thread's load error. */
#ifndef R2GEN_CORE_ERROR_H
#define R2GEN_CORE_ERROR_H

#include "r2gen.h"

#define R2GEN_ERROR_MESSAGE_MAX 512

typedef struct error {
    r2gen_status status;
    char message[R2GEN_ERROR_MESSAGE_MAX];
} error;

/* Record status and a printf-style message; returns status so callers can `return error_set(...)`. */
r2gen_status error_set(error *err, r2gen_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix an already-set message with more context ("vision GGUF: " + message). */
r2gen_status error_prefix(error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void error_clear(error *err);

#endif
