/* kv: see kv.h. */
#include "core/kv.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/fileio.h"

void lp_kv_init(lp_kv *kv) { memset(kv, 0, sizeof *kv); }

void lp_kv_free(lp_kv *kv) {
    for (int i = 0; i < kv->count; i++) {
        lp_free(kv->keys[i]);
        lp_free(kv->vals[i]);
    }
    lp_free(kv->keys);
    lp_free(kv->vals);
    memset(kv, 0, sizeof *kv);
}

static int key_ok(const char *k) {
    if (!*k) return 0;
    for (; *k; k++)
        if (!isalnum((unsigned char)*k) && *k != '_' && *k != '.' && *k != '-') return 0;
    return 1;
}

static int find(const lp_kv *kv, const char *key) {
    for (int i = 0; i < kv->count; i++)
        if (strcmp(kv->keys[i], key) == 0) return i;
    return -1;
}

lp_status lp_kv_set(lp_kv *kv, const char *key, const char *val) {
    if (!key_ok(key)) return lp_errorf(LP_ERR_ARG, "bad config key '%s'", key);
    if (strchr(val, '\n')) return lp_errorf(LP_ERR_ARG, "config value for '%s' contains a newline", key);
    char *v = lp_strdup(val);
    if (!v) return LP_ERR_NOMEM;
    int i = find(kv, key);
    if (i >= 0) {
        lp_free(kv->vals[i]);
        kv->vals[i] = v;
        return LP_OK;
    }
    if (kv->count == kv->cap) {
        int cap = kv->cap ? kv->cap * 2 : 16;
        char **k2 = lp_realloc(kv->keys, (size_t)cap, sizeof *k2);
        if (!k2) goto nomem;
        kv->keys = k2;
        char **v2 = lp_realloc(kv->vals, (size_t)cap, sizeof *v2);
        if (!v2) goto nomem;
        kv->vals = v2;
        kv->cap = cap;
    }
    kv->keys[kv->count] = lp_strdup(key);
    if (!kv->keys[kv->count]) goto nomem;
    kv->vals[kv->count++] = v;
    return LP_OK;
nomem:
    lp_free(v);
    return LP_ERR_NOMEM;
}

lp_status lp_kv_setf(lp_kv *kv, const char *key, const char *fmt, ...) {
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf) return lp_errorf(LP_ERR_ARG, "config value for '%s' too long", key);
    return lp_kv_set(kv, key, buf);
}

lp_status lp_kv_merge(lp_kv *dst, const lp_kv *src) {
    for (int i = 0; src && i < src->count; i++) LP_TRY(lp_kv_set(dst, src->keys[i], src->vals[i]));
    return LP_OK;
}

lp_status lp_kv_set_int(lp_kv *kv, const char *key, long long v) { return lp_kv_setf(kv, key, "%lld", v); }
lp_status lp_kv_set_double(lp_kv *kv, const char *key, double v) { return lp_kv_setf(kv, key, "%.17g", v); }

const char *lp_kv_get(const lp_kv *kv, const char *key) {
    int i = find(kv, key);
    return i >= 0 ? kv->vals[i] : NULL;
}

lp_status lp_kv_get_int(const lp_kv *kv, const char *key, long long *out) {
    const char *v = lp_kv_get(kv, key);
    if (!v) return lp_errorf(LP_ERR_FORMAT, "config key '%s' is missing", key);
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end) return lp_errorf(LP_ERR_FORMAT, "config key '%s': '%s' is not an integer", key, v);
    *out = x;
    return LP_OK;
}

lp_status lp_kv_get_double(const lp_kv *kv, const char *key, double *out) {
    const char *v = lp_kv_get(kv, key);
    if (!v) return lp_errorf(LP_ERR_FORMAT, "config key '%s' is missing", key);
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end) return lp_errorf(LP_ERR_FORMAT, "config key '%s': '%s' is not a number", key, v);
    *out = x;
    return LP_OK;
}

long long lp_kv_get_int_or(const lp_kv *kv, const char *key, long long dflt) {
    long long x;
    return lp_kv_get(kv, key) && lp_kv_get_int(kv, key, &x) == LP_OK ? x : dflt;
}

double lp_kv_get_double_or(const lp_kv *kv, const char *key, double dflt) {
    double x;
    return lp_kv_get(kv, key) && lp_kv_get_double(kv, key, &x) == LP_OK ? x : dflt;
}

lp_status lp_kv_get_int_in(const lp_kv *kv, const char *key, long long lo, long long hi, int *out) {
    long long v;
    LP_TRY(lp_kv_get_int(kv, key, &v));
    if (v < lo || v > hi) return lp_errorf(LP_ERR_FORMAT, "%s = %lld is outside [%lld, %lld]", key, v, lo, hi);
    *out = (int)v;
    return LP_OK;
}

lp_status lp_kv_get_int_list(const lp_kv *kv, const char *key, int n, long lo, long hi, int *out) {
    const char *u = lp_kv_get(kv, key);
    if (!u) return lp_errorf(LP_ERR_FORMAT, "%s is missing", key);
    const char *p = u;
    for (int i = 0; i < n; i++) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        int last = i + 1 == n;
        if (errno || end == p || x < lo || x > hi || (last ? *end != '\0' : *end != ','))
            return lp_errorf(LP_ERR_FORMAT, "%s = '%s' is not %d integers in [%ld, %ld] separated by commas", key, u, n,
                             lo, hi);
        out[i] = (int)x;
        p = end + 1;
    }
    return LP_OK;
}

lp_status lp_kv_set_int_list(lp_kv *kv, const char *key, int n, const int *v) {
    char buf[4096];
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        int w = snprintf(buf + off, sizeof buf - off, i ? ",%d" : "%d", v[i]);
        if (w < 0 || (size_t)w >= sizeof buf - off) return lp_errorf(LP_ERR_ARG, "%s: list too long", key);
        off += (size_t)w;
    }
    if (n == 0) buf[0] = '\0';
    return lp_kv_set(kv, key, buf);
}

char *lp_kv_format(const lp_kv *kv, size_t *len) {
    size_t n = 1;
    for (int i = 0; i < kv->count; i++) n += strlen(kv->keys[i]) + strlen(kv->vals[i]) + 4;
    char *s = lp_malloc(n, 1);
    if (!s) return NULL;
    size_t off = 0;
    for (int i = 0; i < kv->count; i++) off += (size_t)sprintf(s + off, "%s = %s\n", kv->keys[i], kv->vals[i]);
    s[off] = '\0';
    if (len) *len = off;
    return s;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\r') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) *--e = '\0';
    return s;
}

lp_status lp_kv_parse(lp_kv *kv, const char *text, size_t len, const char *what) {
    char *buf = lp_malloc(len + 1, 1);
    if (!buf) return LP_ERR_NOMEM;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (memchr(buf, '\0', len)) {
        lp_free(buf);
        return lp_errorf(LP_ERR_FORMAT, "%s: contains a NUL byte", what);
    }
    lp_status s = LP_OK;
    int lineno = 0;
    for (char *line = buf; line && s == LP_OK; lineno++) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        char *t = trim(line);
        if (*t && *t != '#') {
            char *eq = strchr(t, '=');
            if (!eq) {
                s = lp_errorf(LP_ERR_FORMAT, "%s line %d: expected 'key = value'", what, lineno + 1);
                break;
            }
            *eq = '\0';
            char *k = trim(t), *v = trim(eq + 1);
            if (!key_ok(k)) s = lp_errorf(LP_ERR_FORMAT, "%s line %d: bad key '%s'", what, lineno + 1, k);
            else s = lp_kv_set(kv, k, v);
        }
        line = nl ? nl + 1 : NULL;
    }
    lp_free(buf);
    return s;
}

lp_status lp_kv_write_file(const lp_kv *kv, const char *path) {
    size_t len;
    char *s = lp_kv_format(kv, &len);
    if (!s) return LP_ERR_NOMEM;
    lp_status st = lp_file_write_all(path, s, len);
    lp_free(s);
    return st;
}

lp_status lp_kv_read_file(lp_kv *kv, const char *path) {
    char *buf;
    size_t len;
    LP_TRY(lp_file_read_max(path, LP_KV_MAX_FILE_BYTES, "a config file (LP_KV_MAX_FILE_BYTES; is it a config file?)",
                            &buf, &len));
    lp_status s = lp_kv_parse(kv, buf, len, path);
    lp_free(buf);
    return s;
}
