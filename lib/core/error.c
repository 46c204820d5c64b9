#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

r2gen_status error_set(error *err, r2gen_status status, const char *fmt, ...)
{
    if (!err) return status;
    va_list args;
    va_start(args, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, args);
    va_end(args);
    err->status = status;
    return status;
}

r2gen_status error_prefix(error *err, const char *fmt, ...)
{
    if (!err) return R2GEN_ERR_INTERNAL;
    char prefix[R2GEN_ERROR_MESSAGE_MAX];
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(prefix, sizeof prefix, fmt, args);
    va_end(args);
    size_t prefix_len = n < 0 ? 0 : (size_t)n < sizeof prefix ? (size_t)n : sizeof prefix - 1;
    size_t message_len = strlen(err->message);
    if (prefix_len + message_len >= sizeof err->message)
        message_len = sizeof err->message - 1 - prefix_len;
    memmove(err->message + prefix_len, err->message, message_len);
    memcpy(err->message, prefix, prefix_len);
    err->message[prefix_len + message_len] = '\0';
    return err->status;
}

void error_clear(error *err)
{
    if (!err) return;
    err->status = R2GEN_OK;
    err->message[0] = '\0';
}
