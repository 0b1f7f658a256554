/* rundir: see rundir.h. */
#include "core/rundir.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/fileio.h"

const char *lp_rundir_path(const char *dir, const char *name, char *buf, size_t n) {
    snprintf(buf, n, "%s/%s", dir, name);
    return buf;
}

lp_status lp_rundir_write_command(const char *dir, const char *command) {
    if (!command) return LP_OK;
    const size_t n = strlen(command);
    char *line = lp_malloc(n + 1, 1), path[4096];
    if (!line) return LP_ERR_NOMEM;
    memcpy(line, command, n);
    line[n] = '\n';
    lp_status s = lp_file_write_all(lp_rundir_path(dir, "command.txt", path, sizeof path), line, n + 1);
    lp_free(line);
    return s;
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
        if (nl && row_kept(buf + i, max1, max2)) {
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
    *f = fopen(path, "a");
    if (!*f) return lp_errorf(LP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(*f), &st) == 0 && st.st_size == 0) fprintf(*f, "%s\n", header);
    return LP_OK;
}

lp_status lp_rundir_sync_log(FILE *f, const char *what) {
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        return lp_errorf(LP_ERR_IO, "%s: cannot write the log: %s", what, strerror(errno));
    return LP_OK;
}

/* Delete everything inside `dir` (not dir itself); symbolic links are unlinked, never followed. */
static lp_status clear_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return lp_errorf(LP_ERR_IO, "%s: cannot open: %s", dir, strerror(errno));
    lp_status s = LP_OK;
    struct dirent *e;
    while (s == LP_OK && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char path[4096];
        struct stat st;
        lp_rundir_path(dir, e->d_name, path, sizeof path);
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            s = clear_dir(path);
            if (s == LP_OK && rmdir(path) != 0) s = lp_errorf(LP_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
        } else if (unlink(path) != 0) {
            s = lp_errorf(LP_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
        }
    }
    closedir(d);
    return s;
}

/* 1 if `dir` has an entry besides . and .., 0 if not, -1 if it cannot be read. */
static int has_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    int any = 0;
    while (!any && (e = readdir(d)) != NULL) any = strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return any;
}

/* Whether `dir` holds something lstmprune writes (a run, a pruning report, a sensitivity analysis, a
 * sweep): --force empties only such a directory, never one that merely happens to be named by mistake
 * (a home directory, a data directory). */
static int holds_outputs(const char *dir) {
    static const char *const marks[] = {"config.txt", "last.ckpt", "best.ckpt", "pruned.ckpt", "report.md",
                                        "report.json", "sensitivity.csv", "sweep.conf", "train.tsv"};
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++) {
        char path[4096];
        if (access(lp_rundir_path(dir, marks[i], path, sizeof path), F_OK) == 0) return 1;
    }
    return 0;
}

lp_status lp_rundir_claim(const char *dir, int force) {
    struct stat st;
    if (stat(dir, &st) != 0) return LP_OK; /* made by whoever writes it */
    if (!S_ISDIR(st.st_mode)) return lp_errorf(LP_ERR_ARG, "%s exists and is not a directory", dir);
    int any = has_entries(dir);
    if (any < 0) return lp_errorf(LP_ERR_IO, "%s: cannot read: %s", dir, strerror(errno));
    if (!any) return LP_OK;
    if (!force)
        return lp_errorf(LP_ERR_ARG, "%s is not empty: --resume %s continues the run there, --force starts over "
                                     "(deletes everything in it), or choose another directory", dir, dir);
    if (!holds_outputs(dir))
        return lp_errorf(LP_ERR_ARG, "%s is not empty and holds no lstmprune run or report (no config.txt, last.ckpt, "
                                     "report.md, ...): --force empties only such directories; choose another one",
                         dir);
    return clear_dir(dir);
}

/* The pid of a temporary file name "<name>.tmp.<pid>" (core/fileio.c), or 0 if the name is not one. */
static long tmp_pid(const char *name) {
    const char *p = strstr(name, ".tmp.");
    while (p && strstr(p + 1, ".tmp.")) p = strstr(p + 1, ".tmp."); /* the last one */
    if (!p || p == name || !p[5]) return 0;
    char *end;
    long pid = strtol(p + 5, &end, 10);
    return *end || pid <= 0 ? 0 : pid;
}

/* Remove the temporary files in `dir` left by processes that are gone (a kill during an atomic write);
 * a live process's (a pid in use) is left alone. */
static lp_status remove_stale_tmp(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return lp_errorf(LP_ERR_IO, "%s: cannot open: %s", dir, strerror(errno));
    lp_status s = LP_OK;
    struct dirent *e;
    while (s == LP_OK && (e = readdir(d)) != NULL) {
        long pid = tmp_pid(e->d_name);
        int gone = pid && kill((pid_t)pid, 0) != 0 && errno == ESRCH; /* EPERM: alive, someone else's */
        if (!gone) continue;
        char path[4096];
        if (unlink(lp_rundir_path(dir, e->d_name, path, sizeof path)) != 0 && errno != ENOENT)
            s = lp_errorf(LP_ERR_IO, "%s: cannot remove a stale temporary file: %s", path, strerror(errno));
    }
    closedir(d);
    return s;
}

lp_status lp_rundir_prepare_resume(const char *dir) {
    struct stat st;
    char path[4096];
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return lp_errorf(LP_ERR_IO, "%s: no such run directory", dir);
    if (access(lp_rundir_path(dir, "last.ckpt", path, sizeof path), F_OK) != 0)
        return lp_errorf(LP_ERR_IO, "%s: no last.ckpt to resume from (the run stopped before its first "
                                    "checkpoint): start it over with --out %s --force", dir, dir);
    return remove_stale_tmp(dir);
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
