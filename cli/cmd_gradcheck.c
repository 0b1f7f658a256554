/* cmd_gradcheck: `lstmprune gradcheck` — the gradient checker of the tests (check/gradcheck.h), for
 * anyone: central differences against the analytic backward of a layer or op, per input tensor, with
 * PASS/FAIL against a stated threshold. docs/TUTORIAL.md explains why it works. */
#include <stdio.h>
#include <string.h>

#include "check/gradcheck.h"
#include "cli/args.h"
#include "cli/cli.h"

static const lp_arg gradcheck_args[] = {
    {"op", "op", LP_ARG_STR, 0, "NAME",
     "a layer check (lstm, bilstm, lstm-cell, dense, moe, embedding), any tape op by name (matmul, sigmoid, "
     "...), or all",
     "all"},
    {"batch", "batch", LP_ARG_INT, 1, "B", "batch rows (layer checks; default: the check's own)", NULL},
    {"time", "time", LP_ARG_INT, 1, "T", "time steps", NULL},
    {"features", "features", LP_ARG_INT, 1, "F", "input features (the embedding's width for embedding)", NULL},
    {"hidden", "hidden", LP_ARG_INT, 1, "H", "units (outputs for dense)", NULL},
    {"classes", "classes", LP_ARG_INT, 1, "C", "classes (moe); the vocabulary (embedding)", NULL},
    {"experts", "experts", LP_ARG_INT, 1, "E", "experts (moe)", NULL},
    {"seed", "seed", LP_ARG_INT, 1, "S", "layer checks: draw the inputs, the weights and the projection r from S; "
                                          "tape ops: r (default: the checks' own data seeds, r from 1234)", NULL},
    {"eps", "eps", LP_ARG_NUM, 1e-12, "X", "finite-difference step", "0.01"},
    {"rtol", "rtol", LP_ARG_NUM, 0, "X", "relative tolerance: an element passes when |num-ana| <= atol + "
                                         "rtol*max(|num|,|ana|)", "0.01"},
    {"atol", "atol", LP_ARG_NUM, 0, "X", "absolute tolerance (matters where the gradient is near 0)", "0.001"},
    {"max-per-tensor", "max-per-tensor", LP_ARG_INT, 0, "N",
     "check a random N elements of each tensor in each configuration (0 = all)", "0"},
    {"loss", "loss", LP_ARG_STR, 0, "double|float",
     "accumulate L = sum(out*r) in double, or in float to see why the checker does not", "double"},
    {"verbose", "verbose", LP_ARG_FLAG, 0, NULL, "print every failing element", NULL},
};

#define COUNT(t) ((int)(sizeof t / sizeof t[0]))
#define MAX_SIZE 4096 /* sizes above this make checks of hours: 2 forward passes per element */

static void help(void) {
    printf("usage: lstmprune gradcheck [--op NAME] [options]\n\n"
           "Central differences (L(x+eps) - L(x-eps)) / 2eps of L = sum over outputs of out*r (r fixed, random)\n"
           "against the analytic gradient of the backward pass, for every element of every input tensor.\n"
           "Prints per tensor the worst relative error and PASS/FAIL; exit 0 when every check passes, 1 when one\n"
           "fails. Some op cases tighten the given tolerances where their op allows it (embedding x0.01,\n"
           "softmax_xent atol x0.05; see check/lm_case.c).\n\noptions:\n");
    lp_kv d;
    lp_kv_init(&d);
    lp_args_help(stdout, gradcheck_args, COUNT(gradcheck_args), &d);
    lp_kv_free(&d);
    printf("\nlayer checks:\n");
    for (int i = 0; i < lp_gc_n_checks; i++)
        printf("  %-10s %s\n  %-10s sizes: %s\n", lp_gc_checks[i].name, lp_gc_checks[i].what, "",
               lp_gc_checks[i].sizes);
    printf("\ntape ops:");
    for (int i = 0; i < lp_gc_n_cases; i++) printf(" %s", lp_gc_cases[i].op);
    printf("\n");
}

/* Sizes and options from the flags; 2 with the message printed when one is out of range. */
static int read_flags(const lp_kv *kv, lp_gc_size *size, lp_gc_opts *o) {
    static const char *const keys[6] = {"batch", "time", "features", "hidden", "classes", "experts"};
    int *dst[6] = {&size->batch, &size->time, &size->features, &size->hidden, &size->classes, &size->experts};
    memset(size, 0, sizeof *size);
    for (int k = 0; k < 6; k++)
        if (lp_kv_get(kv, keys[k]) && lp_kv_get_int_in(kv, keys[k], 1, MAX_SIZE, dst[k]) != LP_OK) {
            lp_cli_error("gradcheck", "--%s: %s", keys[k], lp_last_error());
            return 2;
        }
    lp_gc_opts_default(o);
    long long seed = lp_kv_get_int_or(kv, "seed", 0);
    size->seed = (uint64_t)seed;
    if (seed) o->seed = (uint64_t)seed;
    o->eps = lp_kv_get_double_or(kv, "eps", o->eps);
    o->rtol = lp_kv_get_double_or(kv, "rtol", o->rtol);
    o->atol = lp_kv_get_double_or(kv, "atol", o->atol);
    o->max_per_input = (int)lp_kv_get_int_or(kv, "max-per-tensor", 0);
    o->verbose = lp_kv_get(kv, "verbose") != NULL;
    const char *loss = lp_kv_get(kv, "loss");
    if (loss && strcmp(loss, "double") && strcmp(loss, "float")) {
        lp_cli_error("gradcheck", "--loss: '%s' is not double or float", loss);
        return 2;
    }
    o->loss_float = loss && !strcmp(loss, "float");
    if (o->eps > 1.0) {
        lp_cli_error("gradcheck", "--eps: %g is not a small step (at most 1)", o->eps);
        return 2;
    }
    return 0;
}

/* Run one layer check or op case and print its report; 1 when it failed or could not run. */
static int run_one(const char *name, const lp_gc_size *size, const lp_gc_opts *o) {
    lp_gc_result r;
    lp_gc_result_init(&r);
    lp_status st;
    const lp_gc_check *check = lp_gc_check_find(name);
    if (check) {
        printf("%s: %s\n", name, check->what);
        st = check->run(size, o, &r);
    } else {
        printf("%s: the tape op's own case (check/registry.c)\n", name);
        st = lp_gc_case_find(name)->run(o, &r);
    }
    if (st != LP_OK) {
        lp_cli_error("gradcheck", "%s could not run: %s", name, lp_last_error());
        return 1;
    }
    lp_gc_result_report(stdout, name, &r);
    printf("\n");
    return r.ok ? 0 : 1;
}

int lp_cmd_gradcheck(int argc, char **argv) {
    lp_kv kv;
    lp_kv_init(&kv);
    int rc = lp_args_parse("gradcheck", argc, argv, gradcheck_args, COUNT(gradcheck_args), &kv, NULL, NULL, NULL,
                           NULL);
    if (rc == 1) help();
    lp_gc_size size;
    lp_gc_opts o;
    if (rc == 0) rc = read_flags(&kv, &size, &o);
    const char *op = lp_kv_get(&kv, "op");
    if (!op) op = "all";
    if (rc == 0 && strcmp(op, "all") && !lp_gc_check_find(op) && !lp_gc_case_find(op)) {
        lp_cli_error("gradcheck", "--op: no layer check or tape op called '%s' (see --help)", op);
        rc = 2;
    }
    static const char *const sizes[] = {"batch", "time", "features", "hidden", "classes", "experts"};
    for (int k = 0; rc == 0 && strcmp(op, "all") && !lp_gc_check_find(op) && k < 6; k++)
        if (lp_kv_get(&kv, sizes[k])) { /* an op's case has its own fixed sizes */
            lp_cli_error("gradcheck", "--%s: sizes apply to the layer checks, not to the tape op '%s'", sizes[k], op);
            rc = 2;
        }
    if (rc != 0) {
        lp_kv_free(&kv);
        return rc == 1 ? 0 : rc;
    }
    printf("An element passes when |num - ana| <= atol + rtol*max(|num|,|ana|): eps %g, rtol %g, atol %g; "
           "L summed in %s.\n\n", o.eps, o.rtol, o.atol, o.loss_float ? "float" : "double");
    int failed = 0, ran = 0;
    if (strcmp(op, "all")) {
        failed = run_one(op, &size, &o);
        ran = 1;
    } else {
        for (int i = 0; i < lp_gc_n_checks; i++, ran++) failed += run_one(lp_gc_checks[i].name, &size, &o);
        for (int i = 0; i < lp_gc_n_cases; i++)
            if (!lp_gc_check_find(lp_gc_cases[i].op)) failed += run_one(lp_gc_cases[i].op, &size, &o), ran++;
    }
    printf("gradcheck: %d of %d %s passed\n", ran - failed, ran, ran == 1 ? "check" : "checks");
    lp_kv_free(&kv);
    return failed ? 1 : 0;
}
