/* lstmprune info CKPT: what a checkpoint holds — model kind, unit groups and their sizes, parameters
 * per tensor, FLOPs per step, file size, training state — for the video models and the LM alike. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/ckpt.h"
#include "lm/lm.h"
#include "model/model.h"

/* The unit groups and the tensors of a parameter block. */
static void print_layout(const lp_unit_group *groups, int n_groups, const lp_params *ps) {
    printf("  unit groups\n");
    for (int g = 0; g < n_groups; g++) {
        const lp_unit_group *gr = &groups[g];
        size_t np = lp_tensor_numel(gr->w_ih) + lp_tensor_numel(gr->w_hh) + lp_tensor_numel(gr->b);
        printf("    %-10s %5d units  input %5d  %10zu parameters%s%s  -> %s\n", gr->name, gr->units, gr->input_dim, np,
               gr->reverse ? "  (reverse)" : "", gr->fixed ? "  (kept whole: tied)" : "", gr->consumer_name);
    }
    printf("  tensors\n");
    for (int i = 0; i < ps->count; i++) {
        char shape[64];
        printf("    %-16s %-14s %zu\n", ps->items[i].name, lp_tensor_shape_str(&ps->items[i].t, shape, sizeof shape),
               lp_tensor_numel(&ps->items[i].t));
    }
}

/* A trainer's state.* keys (best figure: GAP for the video models, perplexity for the LM) and a plan. */
static void print_state(const lp_ckpt *c) {
    const char *step = lp_kv_get(&c->meta, "state.step"), *epoch = lp_kv_get(&c->meta, "state.epoch");
    const char *gap = lp_kv_get(&c->meta, "state.best_gap"), *ppl = lp_kv_get(&c->meta, "state.best_ppl");
    if (step)
        printf("  training     step %s, next epoch %s, best %s %s%s\n", step, epoch ? epoch : "?",
               ppl ? "valid perplexity" : "valid GAP", ppl ? ppl : gap ? gap : "?",
               lp_ckpt_find(c, "opt.m") ? ", optimizer state included" : "");
    const char *pr = lp_kv_get(&c->meta, "plan.summary");
    if (pr) printf("  pruned       %s\n", pr);
}

static int info_video(const char *path, const lp_ckpt *c) {
    lp_model m;
    if (lp_model_from_ckpt(&m, c, path) != LP_OK) return 1;
    printf("  model        %s, input %d features, %d classes\n", lp_model_kind_name(m.kind), m.input_dim, m.classes);
    printf("  file         %zu bytes\n", c->file_bytes);
    printf("  parameters   %zu\n", lp_model_numel(&m));
    printf("  FLOPs        %.4g per frame (recurrent layers) + %.4g per video (head)\n", lp_model_flops_per_frame(&m),
           lp_model_flops_head(&m));
    print_layout(m.groups, m.n_groups, m.params);
    lp_model_free(&m);
    return 0;
}

static int info_lm(const char *path, const lp_ckpt *c) {
    lp_lm m;
    if (lp_lm_from_ckpt(&m, c, path) != LP_OK) return 1;
    printf("  model        lm, vocabulary %d words, embedding %d%s\n", m.cfg.vocab, m.cfg.embed,
           m.cfg.tied ? ", softmax tied to the embedding" : "");
    printf("  file         %zu bytes\n", c->file_bytes);
    printf("  parameters   %zu\n", lp_lm_numel(&m));
    printf("  FLOPs        %.4g per word (LSTM layers and softmax)\n", lp_lm_flops_per_word(&m));
    print_layout(m.groups, m.cfg.layers, &m.params);
    lp_lm_free(&m);
    return 0;
}

int lp_cmd_info(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: lstmprune info CKPT...\n\nSizes per unit group and tensor, parameters, FLOPs per step, file "
               "bytes, training state (video models and LMs).\n");
        return argc < 2 ? 2 : 0;
    }
    int rc = 0;
    for (int a = 1; a < argc; a++) {
        const char *path = argv[a];
        lp_ckpt c;
        if (lp_ckpt_load(&c, path) != LP_OK) {
            lp_cli_error("info", "%s", lp_last_error());
            rc = 1;
            continue;
        }
        const char *kind = lp_kv_get(&c.meta, "model.kind");
        printf("%s\n", path);
        if ((kind && !strcmp(kind, "lm") ? info_lm(path, &c) : info_video(path, &c)) != 0) {
            lp_cli_error("info", "%s", lp_last_error());
            rc = 1;
        } else {
            print_state(&c);
        }
        lp_ckpt_free(&c);
    }
    return rc;
}
