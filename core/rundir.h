/* rundir: the run-directory helpers of the trainer (train/trainer.c).
 *
 * A run directory holds config.txt, the TSV logs train.tsv and valid.tsv (a header line, then one row per
 * logged step or epoch, appended as training goes) and the checkpoints. On an exact resume the trainer
 * first takes the configuration back from config.txt (lp_rundir_load_config), restores last.ckpt, then
 * cuts each log back to the rows the checkpoint had finished (lp_rundir_truncate_tsv: rows logged after
 * it would otherwise appear twice) and reopens the logs for appending (lp_rundir_open_log). */
#ifndef LP_RUNDIR_H
#define LP_RUNDIR_H
#include <stddef.h>
#include <stdio.h>

#include "core/kv.h"
#include "core/status.h"

/* "<dir>/<name>" into buf (n bytes, truncated to fit); returns buf. */
const char *lp_rundir_path(const char *dir, const char *name, char *buf, size_t n);

/* <dir>/command.txt: the command line that made the directory, one line, written atomically (with
 * config.txt, what lets a report be traced and the run repeated). No command (NULL): nothing written. */
lp_status lp_rundir_write_command(const char *dir, const char *command);

/* A resume takes everything from the run: each key of <dir>/config.txt is set in `cfg` (overriding what
 * it had); then, if epochs_override > 0, train.epochs = epochs_override (the one setting a resume may
 * change: it extends a finished run). */
lp_status lp_rundir_load_config(lp_kv *cfg, const char *dir, long long epochs_override);

/* Keep the lines of the TSV file at `path` that do not start with a digit (the header) and the rows
 * whose first two columns (k1, k2) are <= (max1, max2) in lexicographic order: k1 < max1, or k1 == max1
 * and k2 <= max2 (a row with no second column has k2 = 0). max2 = LLONG_MAX compares the first column
 * only. A last line without its newline (cut by a kill) is dropped: its key may be cut too. A missing
 * file is left missing (LP_OK); the file is rewritten atomically. */
lp_status lp_rundir_truncate_tsv(const char *path, long long max1, long long max2);

/* Open <dir>/<name> for appending; a file that did not exist yet, or is empty (a run killed before its
 * first row reached the disk), starts with the line `header`. */
lp_status lp_rundir_open_log(const char *dir, const char *name, const char *header, FILE **f);

/* Push a log's rows to the disk (fflush + fsync) before a checkpoint, so every row the checkpoint has
 * seen survives a kill right after it. LP_ERR_IO names `what`. */
lp_status lp_rundir_sync_log(FILE *f, const char *what);

/* Before a new run or output directory is written: a missing or empty `dir` is fine (LP_OK, nothing
 * made); a non-empty one is refused (LP_ERR_ARG: its contents would be overwritten or mixed with the new
 * run's) unless `force`, which deletes everything in it (symbolic links are removed, not followed) — only in
 * a directory that holds lstmprune's outputs (config.txt, a checkpoint, a report, ...), so that a mistyped
 * --out never empties a directory of other files. */
lp_status lp_rundir_claim(const char *dir, int force);

/* Before resuming the run in `dir`: it must be a directory holding last.ckpt (LP_ERR_IO otherwise,
 * creating nothing; a run killed before its first checkpoint has nothing to resume and the message says
 * to start it over with --force). Temporary files of atomic writes ("<name>.tmp.<pid>", core/fileio.h)
 * whose process is gone — left by a kill during a write — are removed. */
lp_status lp_rundir_prepare_resume(const char *dir);

/* A duration for a progress line's ETA: "1h05m" from an hour on, else "3m07s"; "--" when unknown
 * (negative, NaN, or more than 1e7 s). */
void lp_rundir_fmt_duration(double s, char *buf, size_t n);

#endif
