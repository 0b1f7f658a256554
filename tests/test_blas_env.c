/* test_blas_env: lp_blas_env_apply (core/blas_env.h) re-executes the program once with
 * OPENBLAS_THREAD_TIMEOUT and GOMP_SPINCOUNT set when the environment lacks them, and leaves a user's
 * values alone (GOMP_SPINCOUNT also when the user chose OMP_WAIT_POLICY).
 *
 * The test runs this same binary as a child ("--child"): the child counts its own starts in
 * LP_TEST_STARTS (each exec of main adds one), calls lp_blas_env_apply, and prints the start count and
 * the variables' values; the parent reads that line through a pipe. */
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
    const char *v = getenv("OPENBLAS_THREAD_TIMEOUT"), *g = getenv("GOMP_SPINCOUNT");
    printf("%s %s %s\n", getenv("LP_TEST_STARTS"), v ? v : "(unset)", g ? g : "(unset)");
    return 0;
}

static void set_or_unset(const char *name, const char *value) {
    if (value) setenv(name, value, 1);
    else unsetenv(name);
}

/* Run the child with OPENBLAS_THREAD_TIMEOUT = value, GOMP_SPINCOUNT = spin and OMP_WAIT_POLICY =
 * policy (NULL: unset); its output line into out. */
static void run_child(const char *value, const char *spin, const char *policy, char *out, size_t n) {
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        unsetenv("LP_TEST_STARTS");
        set_or_unset("OPENBLAS_THREAD_TIMEOUT", value);
        set_or_unset("GOMP_SPINCOUNT", spin);
        set_or_unset("OMP_WAIT_POLICY", policy);
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
    run_child(NULL, NULL, NULL, line, sizeof line);
    /* two starts: the original process and the one re-executed with the variables set */
    assert_string_equal(line, "2 " LP_BLAS_THREAD_TIMEOUT " " LP_GOMP_SPINCOUNT "\n");
}

static void test_user_values_win(void **state) {
    (void)state;
    char line[128];
    run_child("12", "77", NULL, line, sizeof line);
    assert_string_equal(line, "1 12 77\n"); /* no re-exec, values untouched */
    run_child("12", NULL, NULL, line, sizeof line);
    assert_string_equal(line, "2 12 " LP_GOMP_SPINCOUNT "\n"); /* only the missing one set */
    run_child(NULL, "77", NULL, line, sizeof line);
    assert_string_equal(line, "2 " LP_BLAS_THREAD_TIMEOUT " 77\n");
}

static void test_wait_policy_keeps_spin_unset(void **state) {
    (void)state;
    char line[128];
    run_child("12", NULL, "passive", line, sizeof line);
    assert_string_equal(line, "1 12 (unset)\n"); /* the user chose libgomp's waiting: nothing to do */
    run_child(NULL, NULL, "active", line, sizeof line);
    assert_string_equal(line, "2 " LP_BLAS_THREAD_TIMEOUT " (unset)\n");
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--child")) return child_main(argv);
    self_path = realpath(argv[0], NULL);
    if (!self_path) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sets_and_reexecutes_once),
        cmocka_unit_test(test_user_values_win),
        cmocka_unit_test(test_wait_policy_keeps_spin_unset),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    free(self_path);
    return r;
}
