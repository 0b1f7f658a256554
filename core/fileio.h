/* fileio: crash-safe file replacement.
 *
 * lp_atomic_open() creates "<path>.tmp.<pid>" in the same directory; the caller writes through
 * `f`; lp_atomic_commit() flushes, fsyncs, closes and renames it over `path` (then fsyncs the directory),
 * so a crash at any moment leaves either the old file or the complete new one — never a half-written
 * checkpoint. lp_atomic_abort() removes the temporary file.
 *
 * Where `path` already exists as something else than a regular file or a directory — /dev/stdout, a
 * FIFO, a device — it is written directly (no temporary file, no rename: renaming over /dev/stdout would
 * replace it); a symbolic link is followed, so the file it names is replaced and the link stays. */
#ifndef LP_FILEIO_H
#define LP_FILEIO_H
#include <stdio.h>

#include "core/status.h"

typedef struct {
    FILE *f;
    char *path; /* the file replaced (a symbolic link's target) */
    char *tmp;  /* the temporary file; NULL when writing directly (not a regular file) */
} lp_atomic_file;

lp_status lp_atomic_open(lp_atomic_file *af, const char *path);
lp_status lp_atomic_commit(lp_atomic_file *af);
void lp_atomic_abort(lp_atomic_file *af);

/* Write a whole buffer atomically. */
lp_status lp_file_write_all(const char *path, const void *buf, size_t len);
/* Read a whole file (NUL-terminated for convenience; *len excludes the NUL). Caller frees. */
lp_status lp_file_read_all(const char *path, char **buf, size_t *len);
/* The same, refusing a file of more than `max` bytes with LP_ERR_FORMAT "PATH: more than MAX bytes, the
 * limit for <what>" (the caller appends how to raise it): a device or FIFO such as /dev/zero has no size
 * to check beforehand, so the limit is what stops the read. */
lp_status lp_file_read_max(const char *path, size_t max, const char *what, char **buf, size_t *len);
/* mkdir -p. */
lp_status lp_mkdirs(const char *path);

#endif
