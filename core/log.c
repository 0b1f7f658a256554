/* log: the process-wide message sink (contract in log.h). */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>

static lp_log_fn sink;
static void *sink_user;

void lp_log_set_sink(lp_log_fn fn, void *user) {
    sink = fn;
    sink_user = user;
}

void lp_log(lp_log_level level, const char *fmt, ...) {
    if (!sink && level != LP_LOG_FATAL) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (sink) sink(sink_user, level, msg);
    else fprintf(stderr, "%s\n", msg); /* a programmer error is about to abort: never lose its message */
}
