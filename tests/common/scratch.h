/* scratch: the temporary directory of a test program that writes files (synthetic data sets, run
 * directories, checkpoints). The group setup makes it, the tests name files inside it, and
 * lp_test_scratch_teardown, the group teardown, removes it with everything in it:
 *
 *     static int setup(void **state) { (void)state; return lp_test_scratch_make("train"); }
 *     ... lp_test_scratch_path("run/last.ckpt") ...
 *     return cmocka_run_group_tests(tests, setup, lp_test_scratch_teardown);
 *
 * One directory per test program (its tests run one after another). */
#ifndef LP_TEST_SCRATCH_H
#define LP_TEST_SCRATCH_H
#include <stdarg.h>
#include <stddef.h>

/* Create /tmp/lp_test_<tag>_XXXXXX (mkdtemp). 0, or -1 (cmocka's convention for a failed setup). */
int lp_test_scratch_make(const char *tag);

/* The directory lp_test_scratch_make created. */
const char *lp_test_scratch_dir(void);

/* "<dir>/<name>" in one of 8 static buffers used in turn: a result stays valid for the next 7 calls,
 * enough for the handful of paths one call of the library takes. */
const char *lp_test_scratch_path(const char *name);

/* Make the next atomic write of the file `path` (a checkpoint: temp file + rename) fail, as a run stopped
 * just before that write: replace the file by a non-empty directory, onto which rename() fails.
 * 0, or -1. lp_test_unblock_file undoes it (the file stays absent). */
int lp_test_block_file(const char *path);
int lp_test_unblock_file(const char *path);

/* The binary under test: $LP_BIN (the Makefile sets it), else build/lstmprune, made absolute when it
 * exists (the commands below run in the scratch directory). */
const char *lp_test_bin(void);

/* Run "<prefix> <binary> <args>" with /bin/sh in the scratch directory, args formatted from fmt. prefix is
 * shell text before the binary ("OPENBLAS_NUM_THREADS=1", "ulimit -v N && ..."; "" for none). stdout and
 * stderr go into out[cap] (NUL-terminated; the rest of a longer output is read and dropped). Returns the
 * exit code, or -1 for a signal or a failed popen. */
int lp_test_runv(char *out, size_t cap, const char *prefix, const char *fmt, va_list ap);
int lp_test_run(char *out, size_t cap, const char *prefix, const char *fmt, ...);

/* Run the shell command formatted from fmt in directory `dir` (NULL: the current one), stdout and stderr
 * into out[cap] as lp_test_runv does. The exit code, or -1. */
int lp_test_sh(char *out, size_t cap, const char *dir, const char *fmt, ...);

/* 1 if /proc/cpuinfo lists the CPU flag ("avx2", "fma"): OpenBLAS's Haswell kernels, which the golden
 * numbers were made with, need avx2 and fma. */
int lp_test_cpu_has(const char *flag);

/* A cmocka group teardown (`state` is not used): rm -rf the directory. 0, or -1. */
int lp_test_scratch_teardown(void **state);

#endif
