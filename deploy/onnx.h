/* onnx: export a checkpoint — any video model (paper BiLSTM model or LSTM + mixture of experts, any
 * depth, pruned or not) or a PTB language model — as an ONNX model that standard runtimes execute with
 * their fused LSTM kernels (docs/FORMATS.md, "ONNX export", describes the graphs).
 *
 * The model is built with the protobuf-c code generated at build time from ONNX's own schema (Debian's
 * libonnx-dev, onnx/onnx.proto), at IR version 8 and opset LP_ONNX_OPSET. Each recurrent layer is one
 * ONNX `LSTM` node: a BiLSTM whose two directions have the same size is one bidirectional node, one
 * pruned to different sizes is a forward and a reverse node whose outputs are concatenated. Our gate
 * order i, f, g, o becomes ONNX's i, o, f, c, and our one bias is ONNX's W-bias (its R-bias is 0).
 *
 * Video graph: inputs `frames` float [batch, time, F] (dequantised features, padding frames anywhere
 * after a video's length) and `lengths` int32 [batch] (1..time); output `probabilities` float
 * [batch, classes]. The per-frame L2 normalisation the model was trained with (data.l2norm) is in the
 * graph. Language model: input `ids` int64 [batch, time] and per layer l the carried state `h0_l`,
 * `c0_l` float [1, batch, H_l]; outputs `probabilities` float [batch, time, vocabulary] (softmax of the
 * next word) and the final state `h_l`, `c_l`. */
#ifndef LP_DEPLOY_ONNX_H
#define LP_DEPLOY_ONNX_H
#include <stddef.h>

#include "core/status.h"

#define LP_ONNX_OPSET 17 /* the newest Debian's python3-onnx 1.12 checks; ONNX Runtime runs it */

typedef struct {
    char kind[16];      /* "paper", "lstm" or "lm" */
    int nodes;          /* graph nodes */
    int initializers;   /* weight tensors */
    size_t params;      /* floats in the initializers */
    size_t bytes;       /* size of the written file */
} lp_onnx_info;

/* Export the checkpoint at ckpt_path to out_path (written atomically: a failure leaves no partial
 * file). info may be NULL. Errors: the checkpoint's (LP_ERR_IO, LP_ERR_FORMAT, ...), LP_ERR_NOMEM. */
lp_status lp_onnx_export(const char *ckpt_path, const char *out_path, lp_onnx_info *info);

#endif
