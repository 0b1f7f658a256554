/* kv: an ordered list of "key = value" text pairs.
 *
 * Used for the model/training configuration stored in checkpoints and in a run directory's
 * config.txt: human-readable, diff-able, and easy for another program to parse (one pair per line,
 * key and value trimmed, '#' starts a comment line). Keys are [A-Za-z0-9_.-]+; values are single-line
 * text. Numbers are written with enough digits to round-trip (%.17g for doubles). */
#ifndef LP_KV_H
#define LP_KV_H
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef struct {
    char **keys;
    char **vals;
    int count, cap;
} lp_kv;

void lp_kv_init(lp_kv *kv);
void lp_kv_free(lp_kv *kv);
/* Set (replace if present, else append). LP_ERR_ARG for a bad key or a value with a newline. */
lp_status lp_kv_set(lp_kv *kv, const char *key, const char *val);
lp_status lp_kv_setf(lp_kv *kv, const char *key, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
lp_status lp_kv_set_int(lp_kv *kv, const char *key, long long v);
lp_status lp_kv_set_double(lp_kv *kv, const char *key, double v);
/* Every pair of src set in dst, in src's order (src's value wins where both have a key). src may be NULL. */
lp_status lp_kv_merge(lp_kv *dst, const lp_kv *src);
/* NULL when absent. */
const char *lp_kv_get(const lp_kv *kv, const char *key);
/* Typed getters: LP_ERR_FORMAT naming the key when absent or not a number (unless a default is given
 * through the _or variants). */
lp_status lp_kv_get_int(const lp_kv *kv, const char *key, long long *out);
lp_status lp_kv_get_double(const lp_kv *kv, const char *key, double *out);
long long lp_kv_get_int_or(const lp_kv *kv, const char *key, long long dflt);
double lp_kv_get_double_or(const lp_kv *kv, const char *key, double dflt);
/* An int in [lo, hi]: LP_ERR_FORMAT naming the key when absent, not a number or out of range (a
 * corrupt file must not wrap around in the conversion to int). */
lp_status lp_kv_get_int_in(const lp_kv *kv, const char *key, long long lo, long long hi, int *out);
/* A list of exactly n integers in [lo, hi] separated by commas ("512,512,1024"): LP_ERR_FORMAT naming
 * the key otherwise. */
lp_status lp_kv_get_int_list(const lp_kv *kv, const char *key, int n, long lo, long hi, int *out);
lp_status lp_kv_set_int_list(lp_kv *kv, const char *key, int n, const int *v);
/* "key = value\n" lines; caller frees. */
char *lp_kv_format(const lp_kv *kv, size_t *len);
/* Parse text (len bytes; need not be NUL-terminated). `what` names the source in messages
 * ("run/config.txt line 3: ..."). */
lp_status lp_kv_parse(lp_kv *kv, const char *text, size_t len, const char *what);
/* A config file (config.txt, a sweep or recipe file) larger than this is refused: the largest real one
 * is a few KB, and reading /dev/zero as a config must end with a clear error, not when memory runs out. */
#define LP_KV_MAX_FILE_BYTES ((size_t)1 << 20)
/* Whole-file helpers. Writing is atomic (temporary file, fsync, rename). Reading refuses a file of more
 * than LP_KV_MAX_FILE_BYTES (LP_ERR_FORMAT naming the limit). */
lp_status lp_kv_write_file(const lp_kv *kv, const char *path);
lp_status lp_kv_read_file(lp_kv *kv, const char *path);

#endif
