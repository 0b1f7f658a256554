/* status: error codes and messages for runtime errors.
 *
 * Every library function that can fail on user input returns an lp_status and records a message with
 * lp_errorf() (thread-local, so threads do not clobber each other). The message names the file, record
 * and byte offset where that is meaningful. Programmer errors (a broken invariant, not bad input) use
 * LP_CHECK, which is always on (not removed by NDEBUG) and aborts with file:line.
 */
#ifndef LP_STATUS_H
#define LP_STATUS_H

typedef enum {
    LP_OK = 0,
    LP_ERR_IO,      /* open/read/write/fsync/rename failed */
    LP_ERR_FORMAT,  /* corrupt or unexpected file content */
    LP_ERR_SHAPE,   /* tensor shapes do not agree */
    LP_ERR_ARG,     /* bad argument or flag */
    LP_ERR_NOMEM,   /* allocation failed or size overflow */
    LP_ERR_NUMERIC, /* NaN/Inf where a finite number is needed */
    LP_ERR_EOF      /* clean end of a stream (not an error for readers' callers) */
} lp_status;

/* "LP_ERR_IO" etc. */
const char *lp_status_str(lp_status s);

/* Record a message (printf-style) for the calling thread and return `code`, so callers can write
 * `return lp_errorf(LP_ERR_ARG, "--tau must be in (0,1], got %g", tau);` */
lp_status lp_errorf(lp_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The last message recorded on this thread ("" if none). */
const char *lp_last_error(void);

/* Prefix the current message: "ctx: old message". Returns `code`. */
lp_status lp_error_wrap(lp_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Always-on assertion for programmer errors (never for user input). */
void lp_check_failed(const char *file, int line, const char *expr);
#define LP_CHECK(cond) do { if (!(cond)) lp_check_failed(__FILE__, __LINE__, #cond); } while (0)

/* Propagate a non-OK status. */
#define LP_TRY(expr) do { lp_status lp_try_s_ = (expr); if (lp_try_s_ != LP_OK) return lp_try_s_; } while (0)

#endif
