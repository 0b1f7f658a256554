/* lstmprune info CKPT: what a checkpoint holds — model kind, unit groups and their sizes, parameters
 * per tensor, FLOPs per frame, file size, training state. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/ckpt.h"
#include "model/model.h"

static void print_one(const char *path) {
    printf("%s\n", path);
}

int lp_cmd_info(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: lstmprune info CKPT...\n\nSizes per unit group and tensor, parameters, FLOPs per frame, file "
               "bytes, training state.\n");
        return argc < 2 ? 2 : 0;
    }
    int rc = 0;
    for (int a = 1; a < argc; a++) {
        const char *path = argv[a];
        lp_ckpt c;
        lp_model m;
        if (lp_ckpt_load(&c, path) != LP_OK) {
            lp_cli_error("info", "%s", lp_last_error());
            rc = 1;
            continue;
        }
        if (lp_model_from_ckpt(&m, &c, path) != LP_OK) {
            lp_cli_error("info", "%s", lp_last_error());
            lp_ckpt_free(&c);
            rc = 1;
            continue;
        }
        print_one(path);
        printf("  model        %s, input %d features, %d classes\n", lp_model_kind_name(m.kind), m.input_dim, m.classes);
        printf("  file         %zu bytes\n", c.file_bytes);
        printf("  parameters   %zu\n", lp_model_numel(&m));
        printf("  FLOPs        %.4g per frame (recurrent layers) + %.4g per video (head)\n", lp_model_flops_per_frame(&m),
               lp_model_flops_head(&m));
        printf("  unit groups\n");
        for (int g = 0; g < m.n_groups; g++) {
            const lp_unit_group *gr = &m.groups[g];
            size_t np = lp_tensor_numel(gr->w_ih) + lp_tensor_numel(gr->w_hh) + lp_tensor_numel(gr->b);
            printf("    %-10s %5d units  input %5d  %10zu parameters%s  -> %s\n", gr->name, gr->units, gr->input_dim, np,
                   gr->reverse ? "  (reverse)" : "", gr->consumer_name);
        }
        printf("  tensors\n");
        for (int i = 0; i < m.params->count; i++) {
            char shape[64];
            printf("    %-16s %-14s %zu\n", m.params->items[i].name, lp_tensor_shape_str(&m.params->items[i].t, shape, sizeof shape),
                   lp_tensor_numel(&m.params->items[i].t));
        }
        const lp_ckpt_tensor *om = lp_ckpt_find(&c, "opt.m");
        const char *step = lp_kv_get(&c.meta, "state.step");
        if (step)
            printf("  training     step %s, next epoch %s, best valid GAP %s%s\n", step,
                   lp_kv_get(&c.meta, "state.epoch") ? lp_kv_get(&c.meta, "state.epoch") : "?",
                   lp_kv_get(&c.meta, "state.best_gap") ? lp_kv_get(&c.meta, "state.best_gap") : "?",
                   om ? ", optimizer state included" : "");
        const char *pr = lp_kv_get(&c.meta, "plan.summary");
        if (pr) printf("  pruned       %s\n", pr);
        lp_model_free(&m);
        lp_ckpt_free(&c);
    }
    return rc;
}
