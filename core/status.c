/* status: thread-local error messages and the always-on check. */
#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

static _Thread_local char lp_msg[1024];

const char *lp_status_str(lp_status s) {
    switch (s) {
    case LP_OK: return "LP_OK";
    case LP_ERR_IO: return "LP_ERR_IO";
    case LP_ERR_FORMAT: return "LP_ERR_FORMAT";
    case LP_ERR_SHAPE: return "LP_ERR_SHAPE";
    case LP_ERR_ARG: return "LP_ERR_ARG";
    case LP_ERR_NOMEM: return "LP_ERR_NOMEM";
    case LP_ERR_NUMERIC: return "LP_ERR_NUMERIC";
    case LP_ERR_EOF: return "LP_ERR_EOF";
    }
    return "LP_ERR_?";
}

lp_status lp_errorf(lp_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lp_msg, sizeof lp_msg, fmt, ap);
    va_end(ap);
    return code;
}

lp_status lp_error_wrap(lp_status code, const char *fmt, ...) {
    char prefix[512], old[sizeof lp_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, lp_msg, sizeof old);
    snprintf(lp_msg, sizeof lp_msg, "%.500s: %.500s", prefix, old);
    return code;
}

const char *lp_last_error(void) { return lp_msg; }

void lp_check_failed(const char *file, int line, const char *expr) {
    lp_log(LP_LOG_FATAL, "%s:%d: internal check failed: %s", file, line, expr);
    abort();
}
