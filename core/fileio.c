/* fileio: see fileio.h. */
#include "core/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"

/* What lp_atomic_open writes: a symbolic link's target (so the link stays a link), else path itself. */
static char *write_target(const char *path) {
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        char *real = realpath(path, NULL); /* NULL for a dangling link: replace the link itself */
        if (real) {
            char *t = lp_strdup(real);
            free(real);
            return t;
        }
    }
    return lp_strdup(path);
}

/* An existing path that is neither a regular file nor a directory (a device such as /dev/stdout, a
 * FIFO, a socket): written in place, since a rename would replace it. */
static int write_in_place(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

lp_status lp_atomic_open(lp_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    /* refused before anything is written: otherwise the whole file is written and the final rename fails */
    if (is_dir(path)) return lp_errorf(LP_ERR_IO, "%s: is a directory, not a file", path);
    af->path = write_target(path);
    if (!af->path) return LP_ERR_NOMEM;
    const char *opened = af->path;
    if (!write_in_place(af->path)) {
        size_t n = strlen(af->path) + 32;
        af->tmp = lp_malloc(n, 1);
        if (!af->tmp) {
            lp_atomic_abort(af);
            return LP_ERR_NOMEM;
        }
        snprintf(af->tmp, n, "%s.tmp.%ld", af->path, (long)getpid());
        opened = af->tmp;
    }
    af->f = fopen(opened, "wb");
    if (!af->f) {
        lp_status s = lp_errorf(LP_ERR_IO, "%s: cannot create: %s", opened, strerror(errno));
        lp_free(af->path);
        lp_free(af->tmp);
        memset(af, 0, sizeof *af);
        return s;
    }
    return LP_OK;
}

static void fsync_parent_dir(const char *path) {
    char *dir = lp_strdup(path);
    if (!dir) return;
    char *slash = strrchr(dir, '/');
    if (slash) {
        if (slash == dir) slash[1] = '\0';
        else *slash = '\0';
    } else {
        strcpy(dir, ".");
    }
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        (void)fsync(fd); /* best effort: some file systems refuse fsync on directories */
        close(fd);
    }
    lp_free(dir);
}

/* Written in place (no temporary file): flush and close; a device or FIFO has nothing to fsync. */
static lp_status commit_in_place(lp_atomic_file *af) {
    lp_status s = LP_OK;
    if (fflush(af->f) != 0 || ferror(af->f)) s = lp_errorf(LP_ERR_IO, "%s: write failed: %s", af->path, strerror(errno));
    if (fclose(af->f) != 0 && s == LP_OK) s = lp_errorf(LP_ERR_IO, "%s: close failed: %s", af->path, strerror(errno));
    lp_free(af->path);
    memset(af, 0, sizeof *af);
    return s;
}

lp_status lp_atomic_commit(lp_atomic_file *af) {
    if (!af->tmp) return commit_in_place(af);
    lp_status s = LP_OK;
    if (fflush(af->f) != 0 || ferror(af->f)) s = lp_errorf(LP_ERR_IO, "%s: write failed: %s", af->tmp, strerror(errno));
    else if (fsync(fileno(af->f)) != 0) s = lp_errorf(LP_ERR_IO, "%s: fsync failed: %s", af->tmp, strerror(errno));
    if (fclose(af->f) != 0 && s == LP_OK) s = lp_errorf(LP_ERR_IO, "%s: close failed: %s", af->tmp, strerror(errno));
    af->f = NULL;
    if (s == LP_OK && rename(af->tmp, af->path) != 0)
        s = lp_errorf(LP_ERR_IO, "cannot rename %s to %s: %s", af->tmp, af->path, strerror(errno));
    if (s != LP_OK) {
        unlink(af->tmp);
    } else {
        fsync_parent_dir(af->path);
    }
    lp_free(af->path);
    lp_free(af->tmp);
    memset(af, 0, sizeof *af);
    return s;
}

void lp_atomic_abort(lp_atomic_file *af) {
    if (af->f) fclose(af->f);
    if (af->tmp) unlink(af->tmp);
    lp_free(af->path);
    lp_free(af->tmp);
    memset(af, 0, sizeof *af);
}

lp_status lp_file_write_all(const char *path, const void *buf, size_t len) {
    lp_atomic_file af;
    LP_TRY(lp_atomic_open(&af, path));
    if (len && fwrite(buf, 1, len, af.f) != len) {
        lp_status s = lp_errorf(LP_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        lp_atomic_abort(&af);
        return s;
    }
    return lp_atomic_commit(&af);
}

lp_status lp_file_read_all(const char *path, char **buf, size_t *len) {
    return lp_file_read_max(path, SIZE_MAX - 1, "a file", buf, len);
}

lp_status lp_file_read_max(const char *path, size_t max, const char *what, char **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return lp_errorf(LP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    /* fopen takes a directory for reading and only fread fails, with a message that names no cause */
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return lp_errorf(LP_ERR_IO, "%s: is a directory, not a file", path);
    }
    size_t cap = 4096, n = 0;
    char *b = lp_malloc(cap, 1);
    if (!b) {
        fclose(f);
        return LP_ERR_NOMEM;
    }
    for (;;) {
        if (cap - n < 2) {
            char *nb = lp_realloc(b, cap * 2, 1);
            if (!nb) {
                lp_free(b);
                fclose(f);
                return LP_ERR_NOMEM;
            }
            b = nb;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
        if (n > max) {  // checked per block, so at most one buffer doubling past the limit is ever held
            lp_free(b);
            fclose(f);
            return lp_errorf(LP_ERR_FORMAT, "%s: more than %zu bytes, the limit for %s", path, max, what);
        }
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        lp_free(b);
        return lp_errorf(LP_ERR_IO, "%s: read failed", path);
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return LP_OK;
}

lp_status lp_mkdirs(const char *path) {
    char *p = lp_strdup(path);
    if (!p) return LP_ERR_NOMEM;
    for (char *s = p + 1; ; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                lp_status st = lp_errorf(LP_ERR_IO, "cannot create directory %s: %s", p, strerror(errno));
                lp_free(p);
                return st;
            }
            *s = c;
            if (c == '\0') break;
        }
    }
    lp_free(p);
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return lp_errorf(LP_ERR_IO, "%s exists and is not a directory", path);
    return LP_OK;
}
