/* test_front_door: the usage example that opens lstmprune.h, as written there — synthetic data, the
 * paper model trained by the one trainer, one step by hand, pruned to half its units, scored and saved —
 * so that the front door's example keeps compiling and doing what it says. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <cmocka.h>

#include "lstmprune.h"
#include "tests/common/scratch.h"

static int setup_scratch(void **state) {
    (void)state;
    return lp_test_scratch_make("front_door");
}

static lp_status example(double *gap, size_t *numel_before, size_t *numel_after) {
    lp_synth_config sc;
    lp_synth_config_default(&sc, 6, 1);
    lp_synth_write_opts wo;
    lp_synth_write_opts_default(&wo);
    wo.out_dir = "data";
    wo.videos = 600;
    LP_TRY(lp_synth_write(&sc, &wo));

    lp_kv cfg;
    lp_kv_init(&cfg);
    lp_kv_set(&cfg, "data.train", "data/train*.tfrecord");
    lp_kv_set(&cfg, "data.valid", "data/validate*.tfrecord");
    lp_kv_set(&cfg, "data.classes", "6");
    lp_kv_set(&cfg, "model.arch", "paper");
    lp_kv_set(&cfg, "model.hidden", "16");
    lp_kv_set(&cfg, "train.epochs", "2");
    lp_kv_set(&cfg, "train.batch", "32");
    lp_train_opts to = {.run_dir = "run", .quiet = 1};
    lp_train_result tr;
    lp_status st = lp_train(&lp_video_task_kind, &cfg, &to, &tr);
    lp_kv_free(&cfg);
    LP_TRY(st);

    lp_task *t;
    LP_TRY(lp_video_task_load("run/best.ckpt", NULL, &t));
    lp_tape tape;
    LP_TRY(lp_tape_init(&tape, 1 << 24));
    lp_rng drop;
    lp_rng_init(&drop, 1, LP_RNG_STREAM_DROPOUT);
    lp_optim opt;
    lp_optim_config oc = lp_optim_defaults(LP_OPTIM_ADAM);
    LP_TRY(lp_optim_init(&opt, t->params->numel, &oc));
    LP_TRY(t->ops->epoch_begin(t, 0, 0));
    LP_TRY(t->ops->next_batch(t));
    lp_task_batch b;
    LP_TRY(t->ops->train_forward(t, &tape, &drop, 0, 1, &b));
    lp_params_zero_grad(t->params);
    LP_TRY(lp_tape_backward(&tape, b.objective));
    LP_TRY(lp_optim_step(&opt, t->params->data, t->params->grad, 1e-3f));

    lp_prune_opts po;
    lp_prune_opts_default(&po);
    po.rates.target_rate = 0.5;
    lp_prune_plan plan;
    LP_TRY(lp_prune_plan_run(t, &po, &plan));
    lp_task *small;
    LP_TRY(lp_surgery_shrink(t, &plan, &small));

    lp_score s;
    LP_TRY(lp_task_score(small, LP_SPLIT_VALID, &s));
    *gap = lp_score_get(&s, "gap");
    *numel_before = t->params->numel;
    *numel_after = small->params->numel;
    lp_ckpt c;
    lp_ckpt_init(&c);
    LP_TRY(lp_task_save(small, &c));
    LP_TRY(lp_ckpt_save(&c, "small.ckpt"));
    lp_ckpt_free(&c);
    lp_task_free(small);
    lp_prune_plan_free(&plan);
    lp_optim_free(&opt);
    lp_tape_free(&tape);
    lp_task_free(t);
    return LP_OK;
}

static void test_the_example_runs(void **state) {
    (void)state;
    assert_int_equal(chdir(lp_test_scratch_dir()), 0);
    double gap = 0;
    size_t before = 0, after = 0;
    lp_status s = example(&gap, &before, &after);
    if (s != LP_OK) fprintf(stderr, "%s\n", lp_last_error());
    assert_int_equal(s, LP_OK);
    assert_true(after < before); /* half the units: a smaller model */
    assert_true(gap > 0 && gap <= 1);
    /* the saved model loads back with the sizes it was saved with */
    lp_task *t;
    assert_int_equal(lp_video_task_load("small.ckpt", NULL, &t), LP_OK);
    assert_int_equal((long)t->params->numel, (long)after);
    lp_task_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_the_example_runs)};
    return cmocka_run_group_tests(tests, setup_scratch, lp_test_scratch_teardown);
}
