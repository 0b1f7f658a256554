/* scratch: see scratch.h. */
#include "tests/common/scratch.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

int lp_test_scratch_make(const char *tag) {
    snprintf(dir, sizeof dir, "/tmp/lp_test_%s_XXXXXX", tag);
    return mkdtemp(dir) ? 0 : -1;
}

const char *lp_test_scratch_dir(void) {
    return dir;
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
