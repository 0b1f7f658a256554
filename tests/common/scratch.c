/* scratch: see scratch.h. */
#include "tests/common/scratch.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[256];

int lp_test_scratch_make(const char *tag) {
    snprintf(dir, sizeof dir, "/tmp/lp_test_%s_XXXXXX", tag);
    return mkdtemp(dir) ? 0 : -1;
}

const char *lp_test_scratch_dir(void) {
    return dir;
}

const char *lp_test_bin(void) {
    static char abs[4096];
    const char *bin = getenv("LP_BIN");
    if (!bin) bin = "build/lstmprune";
    return realpath(bin, abs) ? abs : bin;
}

/* popen(cmd) with stdout+stderr into out[cap]; the rest of a longer output is read and dropped. */
static int run_shell(char *out, size_t cap, const char *cmd) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    char rest[4096];
    while (fread(rest, 1, sizeof rest, p) > 0) continue;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int lp_test_runv(char *out, size_t cap, const char *prefix, const char *fmt, va_list ap) {
    char args[2048], cmd[8192];
    vsnprintf(args, sizeof args, fmt, ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && %s '%s' %s 2>&1", dir, prefix, lp_test_bin(), args);
    return run_shell(out, cap, cmd);
}

int lp_test_sh(char *out, size_t cap, const char *where, const char *fmt, ...) {
    char body[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    if (where) snprintf(cmd, sizeof cmd, "cd '%s' && %s 2>&1", where, body);
    else snprintf(cmd, sizeof cmd, "%s 2>&1", body);
    return run_shell(out, cap, cmd);
}

int lp_test_cpu_has(const char *flag) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return 0;
    char line[8192], word[64];
    int found = 0;
    snprintf(word, sizeof word, " %s ", flag);
    while (!found && fgets(line, sizeof line - 1, f)) {
        if (strncmp(line, "flags", 5) != 0) continue;
        line[strcspn(line, "\n")] = ' ';
        found = strstr(line, word) != NULL;
    }
    fclose(f);
    return found;
}

int lp_test_run(char *out, size_t cap, const char *prefix, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = lp_test_runv(out, cap, prefix, fmt, ap);
    va_end(ap);
    return rc;
}

const char *lp_test_scratch_path(const char *name) {
    static char buf[8][640];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

int lp_test_block_file(const char *path) {
    char keep[700];
    snprintf(keep, sizeof keep, "%s/keep", path);
    if ((remove(path) != 0 && access(path, F_OK) == 0) || mkdir(path, 0755) != 0) return -1;
    FILE *f = fopen(keep, "w");
    if (!f) return -1;
    return fclose(f) == 0 ? 0 : -1;
}

int lp_test_unblock_file(const char *path) {
    char keep[700];
    snprintf(keep, sizeof keep, "%s/keep", path);
    return remove(keep) == 0 && rmdir(path) == 0 ? 0 : -1;
}

int lp_test_scratch_teardown(void **state) {
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}
