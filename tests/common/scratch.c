/* scratch: see scratch.h. */
#include "tests/common/scratch.h"

#include <stdio.h>
#include <stdlib.h>

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

int lp_test_scratch_teardown(void **state) {
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}
