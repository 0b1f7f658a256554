/* rundir: see rundir.h. */
#include "core/rundir.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/fileio.h"

const char *lp_rundir_path(const char *dir, const char *name, char *buf, size_t n) {
    snprintf(buf, n, "%s/%s", dir, name);
    return buf;
}

lp_status lp_rundir_load_config(lp_kv *cfg, const char *dir, long long epochs_override) {
    char path[4096];
    lp_kv saved;
    lp_kv_init(&saved);
    lp_status s = lp_kv_read_file(&saved, lp_rundir_path(dir, "config.txt", path, sizeof path));
    for (int i = 0; i < saved.count && s == LP_OK; i++) s = lp_kv_set(cfg, saved.keys[i], saved.vals[i]);
    if (s == LP_OK && epochs_override > 0) s = lp_kv_set_int(cfg, "train.epochs", epochs_override);
    lp_kv_free(&saved);
    return s;
}

/* Whether the line at `row` stays: see lp_rundir_truncate_tsv. The buffer is NUL-terminated, so the
 * number parsing stops at the end of the file at the latest. */
static int row_kept(const char *row, long long max1, long long max2) {
    if (row[0] < '0' || row[0] > '9') return 1; /* the header (or an empty line) */
    char *tab;
    long long k1 = strtoll(row, &tab, 10), k2 = *tab == '\t' ? strtoll(tab + 1, NULL, 10) : 0;
    return k1 < max1 || (k1 == max1 && k2 <= max2);
}

lp_status lp_rundir_truncate_tsv(const char *path, long long max1, long long max2) {
    if (access(path, F_OK) != 0) return LP_OK;
    char *buf;
    size_t len;
    LP_TRY(lp_file_read_all(path, &buf, &len));
    size_t w = 0;
    for (size_t i = 0; i < len;) {
        char *nl = memchr(buf + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - buf) + 1 : len;
        if (row_kept(buf + i, max1, max2)) {
            memmove(buf + w, buf + i, end - i);
            w += end - i;
        }
        i = end;
    }
    lp_status s = lp_file_write_all(path, buf, w);
    lp_free(buf);
    return s;
}

lp_status lp_rundir_open_log(const char *dir, const char *name, const char *header, FILE **f) {
    char path[4096];
    lp_rundir_path(dir, name, path, sizeof path);
    int exists = access(path, F_OK) == 0;
    *f = fopen(path, "a");
    if (!*f) return lp_errorf(LP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!exists) fprintf(*f, "%s\n", header);
    return LP_OK;
}

void lp_rundir_fmt_duration(double s, char *buf, size_t n) {
    if (!(s >= 0) || s > 1e7) {
        snprintf(buf, n, "--");
        return;
    }
    long x = (long)(s + 0.5);
    if (x >= 3600) snprintf(buf, n, "%ldh%02ldm", x / 3600, (x / 60) % 60);
    else snprintf(buf, n, "%ldm%02lds", x / 60, x % 60);
}
