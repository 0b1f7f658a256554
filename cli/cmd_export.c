/* cmd_export: `lstmprune export` — a checkpoint as an ONNX model (deploy/onnx.h). */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "deploy/onnx.h"

static const lp_arg export_args[] = {
    {"checkpoint", "checkpoint", LP_ARG_STR, 0, "CKPT", "the model: a video model (paper or lstm, pruned or not) or a PTB LM", NULL},
    {"out", "out", LP_ARG_STR, 0, "FILE", "the ONNX model to write (replaced atomically)", NULL},
    {"quiet", "quiet", LP_ARG_FLAG, 0, NULL, "print nothing but errors", NULL},
};

#define COUNT(t) ((int)(sizeof t / sizeof t[0]))

int lp_cmd_export(int argc, char **argv) {
    lp_kv kv;
    lp_kv_init(&kv);
    int rc = lp_args_parse("export", argc, argv, export_args, COUNT(export_args), &kv, NULL, NULL, NULL, NULL);
    if (rc == 1) {
        printf("usage: lstmprune export --checkpoint CKPT --out FILE\n\n"
               "Write the model of a checkpoint as an ONNX model (IR 8, opset %d) that ONNX Runtime and other\n"
               "engines run with their fused LSTM kernels. Video models take frames [batch,time,features] (the\n"
               "dequantised features; the per-frame L2 normalisation is in the graph) and lengths [batch]; the\n"
               "language model takes ids [batch,time] and the carried state of every layer. docs/FORMATS.md\n"
               "describes the graphs; the model's metadata_props say what the caller must do to the data.\n\n",
               LP_ONNX_OPSET);
        lp_args_help(stdout, export_args, COUNT(export_args), &kv);
        lp_kv_free(&kv);
        return 0;
    }
    const char *ckpt = lp_kv_get(&kv, "checkpoint"), *out = lp_kv_get(&kv, "out");
    if (rc == 0 && (!ckpt || !out)) {
        lp_cli_error("export", "%s is required", !ckpt ? "--checkpoint" : "--out");
        rc = 2;
    }
    if (rc == 0) {
        lp_onnx_info info;
        if (lp_onnx_export(ckpt, out, &info) != LP_OK) {
            lp_cli_error("export", "%s", lp_last_error());
            rc = 1;
        } else if (!lp_kv_get(&kv, "quiet")) {
            printf("%s: %s model, %d nodes, %d weight tensors (%zu parameters), %zu bytes, opset %d\n", out, info.kind,
                   info.nodes, info.initializers, info.params, info.bytes, LP_ONNX_OPSET);
        }
    }
    lp_kv_free(&kv);
    return rc;
}
