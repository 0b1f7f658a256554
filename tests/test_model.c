/* test_model: the paper model (model/paper) against the PyTorch float64 reference at tiny width, its
 * gradient by central differences (deeper stack, lengths, dropout), its config handling, its
 * initialisation, the lengths semantics and the unit-group descriptions pruning relies on. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/kv.h"
#include "core/ops.h"
#include "core/tape.h"
#include "model/paper.h"
#include "check/gradcheck.h"
#include "tests/common/refdata.h"

static void backward_from(lp_tape *tp, lp_tensor *loss) { assert_int_equal(lp_tape_backward(tp, loss), LP_OK); }

/* reference name -> parameter name */
static const char *const ref_names[][2] = {
    {"fw_w_ih", "bilstm.fw.w_ih"}, {"fw_w_hh", "bilstm.fw.w_hh"}, {"fw_b", "bilstm.fw.b"},
    {"bw_w_ih", "bilstm.bw.w_ih"}, {"bw_w_hh", "bilstm.bw.w_hh"}, {"bw_b", "bilstm.bw.b"},
    {"l2_w_ih", "lstm2.w_ih"},     {"l2_w_hh", "lstm2.w_hh"},     {"l2_b", "lstm2.b"},
    {"w_out", "out.w"},            {"b_out", "out.b"},
};
#define N_REF_PARAMS (sizeof ref_names / sizeof ref_names[0])

/* model_tiny.txt: outputs, loss and every gradient. The model runs in float32 with the fused LSTM's
 * activations (< 4e-7 off); through two LSTM layers and the dense layer the values of order 0.1..1
 * carry ~1e-6 error, so we allow atol 2e-5 + rtol 1e-4 (10x margin). A wrong concatenation order,
 * direction alignment or consumer layout moves values by >= 1e-2. */
static void test_model_tiny_reference(void **state) {
    (void)state;
    lp_ref *r = lp_ref_load("model_tiny.txt");
    const lp_ref_tensor *rx = lp_ref_get(r, "x"), *rl = lp_ref_get(r, "labels");
    lp_paper_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.input_dim = rx->dims[2];
    cfg.n_groups = 3;
    cfg.units[0] = lp_ref_get(r, "fw_w_hh")->dims[1];
    cfg.units[1] = lp_ref_get(r, "bw_w_hh")->dims[1];
    cfg.units[2] = lp_ref_get(r, "l2_w_hh")->dims[1];
    cfg.classes = lp_ref_get(r, "w_out")->dims[0];
    lp_paper m;
    assert_int_equal(lp_paper_init(&m, &cfg, 1), LP_OK);
    for (size_t k = 0; k < N_REF_PARAMS; k++) {
        const lp_ref_tensor *rt = lp_ref_get(r, ref_names[k][0]);
        lp_tensor *t = lp_params_find(&m.params, ref_names[k][1]);
        assert_non_null(t);
        assert_int_equal(lp_tensor_numel(t), rt->n); /* the config reproduces every reference shape */
        for (size_t i = 0; i < rt->n; i++) t->data[i] = (float)rt->v[i];
    }
    lp_params_zero_grad(&m.params);
    float *x = lp_ref_floats(rx), *gx = calloc(rx->n, sizeof(float)), *y = lp_ref_floats(rl);
    lp_tape tp;
    assert_int_equal(lp_tape_init(&tp, 1 << 20), LP_OK);
    lp_tensor *tx = lp_tape_view(&tp, x, gx, 3, rx->dims);
    lp_tensor *ty = lp_tape_view(&tp, y, NULL, 2, rl->dims);
    lp_paper_out o;
    assert_int_equal(lp_paper_forward(&m, &tp, tx, NULL, ty, NULL, &o), LP_OK);
    const double atol = 2e-5, rtol = 1e-4;
    LP_ASSERT_CLOSE("layer1_out", o.layer1_out->data, lp_ref_get(r, "layer1_out")->v, lp_ref_get(r, "layer1_out")->n,
                    atol, rtol);
    LP_ASSERT_CLOSE("layer2_h_last", o.h_last->data, lp_ref_get(r, "layer2_h_last")->v,
                    lp_ref_get(r, "layer2_h_last")->n, atol, rtol);
    const lp_ref_tensor *rlog = lp_ref_get(r, "logits"), *rprob = lp_ref_get(r, "probs");
    LP_ASSERT_CLOSE("logits", o.logits->data, rlog->v, rlog->n, atol, rtol);
    float probs[256];
    assert_true(rprob->n <= 256);
    for (size_t i = 0; i < rprob->n; i++) probs[i] = lp_sigmoidf(o.logits->data[i]);
    LP_ASSERT_CLOSE("probs", probs, rprob->v, rprob->n, atol, rtol);
    LP_ASSERT_CLOSE("loss", o.loss->data, lp_ref_get(r, "loss")->v, 1, atol, rtol);
    backward_from(&tp, o.loss);
    LP_ASSERT_CLOSE("grad_x", gx, lp_ref_get(r, "grad_x")->v, rx->n, atol, rtol);
    for (size_t k = 0; k < N_REF_PARAMS; k++) {
        char gname[64];
        snprintf(gname, sizeof gname, "grad_%s", ref_names[k][0]);
        const lp_ref_tensor *rg = lp_ref_get(r, gname);
        LP_ASSERT_CLOSE(gname, lp_params_find(&m.params, ref_names[k][1])->grad, rg->v, rg->n, atol, rtol);
    }
    lp_tape_free(&tp);
    lp_paper_free(&m);
    free(x), free(gx), free(y);
    lp_ref_free(r);
}

/* ---- central differences through the whole model --------------------------------------------------- */

typedef struct {
    lp_paper *m;
    int n_params;           /* in[1 .. n_params] replace these params */
    lp_tensor *targets[8];  /* the model tensors they replace */
    const int *lengths;
    float *labels;
    int B, C;
} model_gc;

/* The model with some of its tensors replaced by the checker's leaves (a shallow copy of the model
 * whose views point at the leaves; the leaves view the same parameter memory, which the checker
 * perturbs). Dropout re-seeds its generator on every call so the function is deterministic. */
static int model_forward(void *user, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    model_gc *c = user;
    (void)n_in;
    lp_paper mm = *c->m;
    for (int k = 0; k < c->n_params; k++) {
        lp_tensor *t = c->targets[k];
        for (int g = 0; g < mm.cfg.n_groups; g++) {
            if (mm.groups[g].w_ih == t) mm.groups[g].w_ih = in[1 + k];
            if (mm.groups[g].w_hh == t) mm.groups[g].w_hh = in[1 + k];
            if (mm.groups[g].b == t) mm.groups[g].b = in[1 + k];
        }
        if (mm.out_w == t) mm.out_w = in[1 + k];
        if (mm.out_b == t) mm.out_b = in[1 + k];
    }
    lp_rng drop;
    lp_rng_init(&drop, 99, LP_RNG_STREAM_DROPOUT);
    lp_tensor *y = lp_tape_view(tp, c->labels, NULL, 2, (int[]){c->B, c->C});
    lp_paper_out o;
    if (lp_paper_forward(&mm, tp, in[0], c->lengths, y, &drop, &o) != LP_OK) return 0;
    out[0] = o.loss;
    out[1] = o.logits;
    return 2;
}

/* A deeper stack (BiLSTM 3+2 → LSTM 4 → LSTM 3 → dense 4) with lengths and dropout 0.3: every
 * parameter tensor and x checked by central differences (default tolerances, gradcheck.c). */
static void test_model_gradcheck_deep(void **state) {
    (void)state;
    enum { B = 3, T = 4, F = 3 };
    lp_paper_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.input_dim = F;
    cfg.n_groups = 4;
    cfg.units[0] = 3, cfg.units[1] = 2, cfg.units[2] = 4, cfg.units[3] = 3;
    cfg.classes = 4;
    cfg.dropout = 0.3f;
    lp_paper m;
    assert_int_equal(lp_paper_init(&m, &cfg, 5), LP_OK);
    /* larger weights than the init so that gradients are of order 0.1..1 */
    for (size_t i = 0; i < m.params.numel; i++) m.params.data[i] *= 1.5f;
    float x[B * T * F], labels[B * 4] = {1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 0, 1};
    lp_gc_fill_uniform(x, B * T * F, -1, 1, 81);
    static const int lengths[B] = {4, 2, 3};
    model_gc c = {&m, 0, {0}, lengths, labels, B, 4};
    lp_gc_result all;
    lp_gc_result_init(&all);
    int total = m.params.count;
    for (int first = 0; first < total; first += 7) { /* x + up to 7 parameter tensors per run */
        lp_gc_input in[8];
        memset(in, 0, sizeof in);
        in[0] = (lp_gc_input){"x", x, 3, {B, T, F}, first != 0}; /* x checked in the first run */
        c.n_params = 0;
        for (int k = first; k < total && k < first + 7; k++) {
            lp_param *p = &m.params.items[k];
            in[1 + c.n_params].name = p->name;
            in[1 + c.n_params].data = p->t.data;
            in[1 + c.n_params].ndim = p->t.ndim;
            memcpy(in[1 + c.n_params].dims, p->t.dims, sizeof p->t.dims);
            c.targets[c.n_params++] = &p->t;
        }
        lp_gc_opts opts;
        lp_gc_opts_default(&opts);
        opts.max_per_input = 12; /* a random subset keeps the test fast; every tensor is covered */
        lp_gc_result res;
        assert_int_equal(lp_gradcheck(model_forward, &c, in, 1 + c.n_params, &opts, &res), LP_OK);
        lp_gc_result_merge(&all, &res);
    }
    lp_gc_result_print(stderr, "model", &all);
    assert_true(all.ok);
    assert_true(lp_gc_ops_count(&all.ops, "lstm") >= 4 && lp_gc_ops_count(&all.ops, "dropout") >= 2);
    assert_true(all.max_abs_grad > 0.1);
    lp_paper_free(&m);
}

/* ---- lengths ----------------------------------------------------------------------------------------- */

/* A padded batch with lengths gives, per row, exactly the logits of that row alone cut to its length
 * (the BiLSTM's reverse direction starts at the last valid frame, layer 2 reports its state there). */
static void test_model_lengths_equal_truncation(void **state) {
    (void)state;
    enum { B = 3, T = 6, F = 4, C = 3 };
    lp_paper_config cfg;
    lp_paper_config_default(&cfg, F, 6, C);
    lp_paper m;
    assert_int_equal(lp_paper_init(&m, &cfg, 11), LP_OK);
    float x[B * T * F];
    lp_gc_fill_uniform(x, B * T * F, -1, 1, 91);
    static const int lengths[B] = {6, 3, 1};
    lp_tape tp;
    assert_int_equal(lp_tape_init(&tp, 1 << 20), LP_OK);
    lp_tape_set_grad(&tp, 0);
    lp_paper_out o;
    assert_int_equal(lp_paper_forward(&m, &tp, lp_tape_view(&tp, x, NULL, 3, (int[]){B, T, F}), lengths, NULL, NULL, &o),
                     LP_OK);
    assert_null(o.loss);
    float padded_logits[B * C];
    memcpy(padded_logits, o.logits->data, sizeof padded_logits);
    /* without lengths, padding frames (here: real numbers) change the short rows */
    lp_paper_out full;
    assert_int_equal(lp_paper_forward(&m, &tp, lp_tape_view(&tp, x, NULL, 3, (int[]){B, T, F}), NULL, NULL, NULL, &full),
                     LP_OK);
    assert_true(fabsf(full.logits->data[1 * C] - padded_logits[1 * C]) > 1e-4f);
    for (int b = 0; b < B; b++) {
        lp_paper_out one;
        assert_int_equal(lp_paper_forward(&m, &tp, lp_tape_view(&tp, x + b * T * F, NULL, 3, (int[]){1, lengths[b], F}),
                                          NULL, NULL, NULL, &one),
                         LP_OK);
        /* same operations on the same numbers; only the GEMM blocking may differ (1 vs 3 rows) */
        for (int k = 0; k < C; k++) assert_true(fabsf(one.logits->data[k] - padded_logits[b * C + k]) < 1e-6f);
    }
    lp_tape_free(&tp);
    lp_paper_free(&m);
}

/* ---- config, init, groups ------------------------------------------------------------------------------ */

static void test_model_config_and_kv(void **state) {
    (void)state;
    lp_paper_config cfg, back;
    lp_paper_config_default(&cfg, 1152, 1024, 3862);
    assert_int_equal(cfg.units[0], 512);
    assert_int_equal(cfg.units[1], 512);
    assert_int_equal(cfg.units[2], 1024);
    assert_int_equal(lp_paper_config_check(&cfg), LP_OK);
    cfg.units[1] = 317; /* a pruned model: directions of different size */
    cfg.dropout = 0.25f;
    lp_kv kv;
    lp_kv_init(&kv);
    assert_int_equal(lp_paper_config_to_kv(&cfg, &kv), LP_OK);
    assert_string_equal(lp_kv_get(&kv, "model.units"), "512,317,1024");
    assert_int_equal(lp_paper_config_from_kv(&back, &kv), LP_OK);
    assert_memory_equal(&cfg, &back, sizeof cfg);
    lp_kv_set(&kv, "model.units", "512,317");
    assert_int_equal(lp_paper_config_from_kv(&back, &kv), LP_ERR_FORMAT);
    assert_non_null(strstr(lp_last_error(), "model.units"));
    lp_kv_set(&kv, "model.units", "512,0,1024");
    assert_int_equal(lp_paper_config_from_kv(&back, &kv), LP_ERR_FORMAT);
    lp_kv_set(&kv, "model.units", "512,317,1024,5");
    assert_int_equal(lp_paper_config_from_kv(&back, &kv), LP_ERR_FORMAT);
    lp_kv_set(&kv, "model.units", "512,317,1024");
    /* a corrupt size that would wrap to 128 in a plain conversion to int is refused, naming the key */
    lp_kv_set(&kv, "model.input_dim", "4294967424");
    assert_int_equal(lp_paper_config_from_kv(&back, &kv), LP_ERR_FORMAT);
    assert_non_null(strstr(lp_last_error(), "model.input_dim"));
    lp_kv_set(&kv, "model.input_dim", "1152");
    lp_kv_set(&kv, "model.classes", "-3862");
    assert_int_equal(lp_paper_config_from_kv(&back, &kv), LP_ERR_FORMAT);
    assert_non_null(strstr(lp_last_error(), "model.classes"));
    lp_kv_free(&kv);

    lp_paper_config bad = cfg;
    bad.n_groups = 2;
    assert_int_equal(lp_paper_config_check(&bad), LP_ERR_ARG);
    bad = cfg;
    bad.units[2] = 0;
    assert_int_equal(lp_paper_config_check(&bad), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "group 2"));
    bad = cfg;
    bad.dropout = 1.0f;
    assert_int_equal(lp_paper_config_check(&bad), LP_ERR_ARG);
    lp_paper m;
    assert_int_equal(lp_paper_init(&m, &bad, 1), LP_ERR_ARG);
    assert_null(m.params.data);
}

/* Seeded PyTorch-style init: same seed same numbers, another seed others; every LSTM tensor within
 * ±1/sqrt(H_g) and filling that range (a uniform sample of >= 100 values reaches 90% of the bound with
 * probability > 1 - 0.9^100), the dense layer within ±1/sqrt(H_L). Names, shapes and group views. */
static void test_model_init_and_groups(void **state) {
    (void)state;
    lp_paper_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.input_dim = 10;
    cfg.n_groups = 4;
    cfg.units[0] = 8, cfg.units[1] = 5, cfg.units[2] = 9, cfg.units[3] = 4;
    cfg.classes = 7;
    lp_paper a, b, c;
    assert_int_equal(lp_paper_init(&a, &cfg, 42), LP_OK);
    assert_int_equal(lp_paper_init(&b, &cfg, 42), LP_OK);
    assert_int_equal(lp_paper_init(&c, &cfg, 43), LP_OK);
    assert_memory_equal(a.params.data, b.params.data, a.params.numel * sizeof(float));
    assert_true(memcmp(a.params.data, c.params.data, a.params.numel * sizeof(float)) != 0);
    size_t want = 0;
    const int in_dim[4] = {10, 10, 13, 9};
    static const char *names[4] = {"bilstm.fw", "bilstm.bw", "lstm2", "lstm3"};
    static const char *consumers[4] = {"lstm2.w_ih", "lstm2.w_ih", "lstm3.w_ih", "out.w"};
    const int col0[4] = {0, 8, 0, 0};
    for (int g = 0; g < 4; g++) {
        const lp_unit_group *gr = &a.groups[g];
        int H = cfg.units[g];
        assert_string_equal(gr->name, names[g]);
        assert_string_equal(gr->consumer_name, consumers[g]);
        assert_int_equal(gr->consumer_col0, col0[g]);
        assert_int_equal(gr->reverse, g == 1);
        assert_int_equal(gr->units, H);
        assert_int_equal(gr->input_dim, in_dim[g]);
        assert_true(gr->w_ih->dims[0] == 4 * H && gr->w_ih->dims[1] == in_dim[g]);
        assert_true(gr->w_hh->dims[0] == 4 * H && gr->w_hh->dims[1] == H);
        assert_true(gr->b->ndim == 1 && gr->b->dims[0] == 4 * H);
        assert_true(gr->consumer->dims[1] >= gr->consumer_col0 + H);
        char name[64];
        snprintf(name, sizeof name, "%s.w_hh", names[g]);
        assert_ptr_equal(lp_params_find(&a.params, name), gr->w_hh);
        want += (size_t)4 * H * (in_dim[g] + H + 1);
        float bound = 1.0f / sqrtf((float)H), mx = 0;
        lp_tensor *ts[3] = {gr->w_ih, gr->w_hh, gr->b};
        for (int k = 0; k < 3; k++)
            for (size_t i = 0; i < lp_tensor_numel(ts[k]); i++) mx = fmaxf(mx, fabsf(ts[k]->data[i]));
        assert_true(mx <= bound && mx > 0.9f * bound);
    }
    assert_true(a.out_w->dims[0] == 7 && a.out_w->dims[1] == 4);
    want += 7 * 4 + 7;
    assert_int_equal(lp_paper_numel(&a), want);
    for (size_t i = 0; i < 28; i++) assert_true(fabsf(a.out_w->data[i]) <= 0.5f); /* 1/sqrt(4) */
    lp_paper_free(&a), lp_paper_free(&b), lp_paper_free(&c);
}

/* The consumer description is what surgery will cut: with group g's consumer columns zeroed, the
 * logits no longer depend on group g's weights at all; with them intact, they do. */
static void test_model_group_consumers(void **state) {
    (void)state;
    enum { B = 2, T = 3, F = 4 };
    lp_paper_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.input_dim = F;
    cfg.n_groups = 4;
    cfg.units[0] = 3, cfg.units[1] = 2, cfg.units[2] = 4, cfg.units[3] = 3;
    cfg.classes = 2;
    float x[B * T * F];
    lp_gc_fill_uniform(x, B * T * F, -1, 1, 101);
    lp_tape tp;
    assert_int_equal(lp_tape_init(&tp, 1 << 20), LP_OK);
    lp_tape_set_grad(&tp, 0);
    for (int g = 0; g < 4; g++) {
        for (int cut = 0; cut < 2; cut++) {
            lp_paper m;
            assert_int_equal(lp_paper_init(&m, &cfg, 3), LP_OK);
            lp_unit_group *gr = &m.groups[g];
            if (cut)
                for (int r = 0; r < gr->consumer->dims[0]; r++)
                    for (int j = 0; j < gr->units; j++)
                        gr->consumer->data[(size_t)r * gr->consumer->dims[1] + gr->consumer_col0 + j] = 0.0f;
            float before[B * 2], after[B * 2];
            lp_paper_out o;
            lp_tape_reset(&tp);
            assert_int_equal(lp_paper_forward(&m, &tp, lp_tape_view(&tp, x, NULL, 3, (int[]){B, T, F}), NULL, NULL, NULL, &o),
                             LP_OK);
            memcpy(before, o.logits->data, sizeof before);
            for (size_t i = 0; i < lp_tensor_numel(gr->w_ih); i++) gr->w_ih->data[i] += 0.5f;
            for (size_t i = 0; i < lp_tensor_numel(gr->b); i++) gr->b->data[i] -= 0.5f;
            lp_tape_reset(&tp);
            assert_int_equal(lp_paper_forward(&m, &tp, lp_tape_view(&tp, x, NULL, 3, (int[]){B, T, F}), NULL, NULL, NULL, &o),
                             LP_OK);
            memcpy(after, o.logits->data, sizeof after);
            double diff = 0;
            for (int i = 0; i < B * 2; i++) diff = fmax(diff, fabs(after[i] - before[i]));
            if (cut) assert_true(diff == 0.0);
            else assert_true(diff > 1e-4);
            lp_paper_free(&m);
        }
    }
    lp_tape_free(&tp);
}

/* Wrong input shapes, labels and lengths are runtime errors with messages, not crashes. */
static void test_model_errors(void **state) {
    (void)state;
    lp_paper_config cfg;
    lp_paper_config_default(&cfg, 4, 4, 3);
    lp_paper m;
    assert_int_equal(lp_paper_init(&m, &cfg, 1), LP_OK);
    lp_tape tp;
    assert_int_equal(lp_tape_init(&tp, 1 << 16), LP_OK);
    float x[2 * 3 * 5] = {0}, y[2 * 4] = {0};
    lp_paper_out o;
    assert_int_equal(lp_paper_forward(&m, &tp, lp_tape_view(&tp, x, NULL, 3, (int[]){2, 3, 5}), NULL, NULL, NULL, &o),
                     LP_ERR_SHAPE);
    assert_non_null(strstr(lp_last_error(), "[2, 3, 5]"));
    lp_tensor *tx = lp_tape_view(&tp, x, NULL, 3, (int[]){2, 3, 4});
    assert_int_equal(lp_paper_forward(&m, &tp, tx, NULL, lp_tape_view(&tp, y, NULL, 2, (int[]){2, 4}), NULL, &o),
                     LP_ERR_SHAPE);
    const int bad[2] = {3, 7};
    assert_int_equal(lp_paper_forward(&m, &tp, tx, bad, NULL, NULL, &o), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "length 7"));
    /* an empty batch or a sequence without frames is an error, as in the lstm model */
    assert_int_equal(lp_paper_forward(&m, &tp, lp_tape_view(&tp, x, NULL, 3, (int[]){2, 0, 4}), NULL, NULL, NULL, &o),
                     LP_ERR_SHAPE);
    assert_non_null(strstr(lp_last_error(), "[2, 0, 4]"));
    assert_int_equal(lp_paper_forward(&m, &tp, lp_tape_view(&tp, x, NULL, 3, (int[]){0, 3, 4}), NULL, NULL, NULL, &o),
                     LP_ERR_SHAPE);
    lp_tape_free(&tp);
    lp_paper_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_tiny_reference),
        cmocka_unit_test(test_model_gradcheck_deep),
        cmocka_unit_test(test_model_lengths_equal_truncation),
        cmocka_unit_test(test_model_config_and_kv),
        cmocka_unit_test(test_model_init_and_groups),
        cmocka_unit_test(test_model_group_consumers),
        cmocka_unit_test(test_model_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
