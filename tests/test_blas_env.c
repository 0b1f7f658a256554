/* test_blas_env: lp_blas_env_apply (core/blas_env.h) re-executes the program once with
 * OPENBLAS_THREAD_TIMEOUT set when the environment has none, and leaves a user's value alone.
 *
 * The test runs this same binary as a child ("--child"): the child counts its own starts in
 * LP_TEST_STARTS (each exec of main adds one), calls lp_blas_env_apply, and prints the start count and
 * the variable's value; the parent reads that line through a pipe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/blas_env.h"

static char *self_path;

static int child_main(char **argv) {
    const char *n = getenv("LP_TEST_STARTS");
    char buf[16];
    snprintf(buf, sizeof buf, "%d", (n ? atoi(n) : 0) + 1);
    setenv("LP_TEST_STARTS", buf, 1);
    lp_blas_env_apply(argv);
    const char *v = getenv("OPENBLAS_THREAD_TIMEOUT");
    printf("%s %s\n", getenv("LP_TEST_STARTS"), v ? v : "(unset)");
    return 0;
}

/* Run the child with OPENBLAS_THREAD_TIMEOUT = value (NULL: unset); its output line into out. */
static void run_child(const char *value, char *out, size_t n) {
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        unsetenv("LP_TEST_STARTS");
        if (value) setenv("OPENBLAS_THREAD_TIMEOUT", value, 1);
        else unsetenv("OPENBLAS_THREAD_TIMEOUT");
        char *args[] = {self_path, "--child", NULL};
        execv(self_path, args);
        _exit(127);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    assert_non_null(f);
    out[0] = 0;
    assert_non_null(fgets(out, (int)n, f));
    fclose(f);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_sets_and_reexecutes_once(void **state) {
    (void)state;
    char line[128];
    run_child(NULL, line, sizeof line);
    /* two starts: the original process and the one re-executed with the variable set */
    assert_string_equal(line, "2 " LP_BLAS_THREAD_TIMEOUT "\n");
}

static void test_user_value_wins(void **state) {
    (void)state;
    char line[128];
    run_child("12", line, sizeof line);
    assert_string_equal(line, "1 12\n"); /* no re-exec, value untouched */
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--child")) return child_main(argv);
    self_path = realpath(argv[0], NULL);
    if (!self_path) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sets_and_reexecutes_once),
        cmocka_unit_test(test_user_value_wins),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    free(self_path);
    return r;
}
