/* init: the Keras initialisers of the video models (train.weight_init = keras), for reproducing the
 * paper's public TensorFlow 2.3 code, whose layers keep Keras's defaults (docs/REPRODUCING.md, "Our
 * defaults vs the public code"). Our default, PyTorch's uniform ±1/sqrt(H), stays in model/paper.c and
 * model/lstm_moe.c; lp_model_init_keras overwrites every tensor of a freshly built model.
 *
 * Keras's layouts are the transposes of ours: an LSTM kernel is [F,4H] (ours w_ih [4H,F]), its
 * recurrent kernel [H,4H] (ours w_hh [4H,H]), a Dense kernel [H,C] (ours [C,H]); the gate order is the
 * same (i, f, c/g, o). In our layout:
 *
 *   w_ih [4H,F]  Glorot uniform: U(±sqrt(6/(fan_in + fan_out))) with fan_in = F, fan_out = 4H
 *   w_hh [4H,H]  orthogonal over the WHOLE matrix (not per gate): A [4H,H] ~ N(0,1), A = QR, w_hh =
 *                Q·diag(sign(diag R)); so w_hh^T·w_hh = I_H (Keras: K·K^T = I for K = w_hh^T)
 *   b    [4H]    0, and 1 on the forget gate (rows H..2H-1; Keras's unit_forget_bias)
 *   dense [C,H]  Glorot uniform with fan_in = H, fan_out = C; bias 0
 *
 * The LSTM+MoE head has two fully-connected layers in the starter code (gates [C(E+1)] and experts [CE]
 * rows of moe.w, layers/moe.h), initialised there by slim's default, Xavier (= Glorot) uniform: each part
 * gets its own Glorot limit (fan_out = its rows); bias 0.
 *
 * Draws come from one lp_rng stream (LP_RNG_STREAM_INIT of the seed), tensor by tensor in the model's
 * declaration order. The QR is LAPACK's (dgeqrf + dorgqr) in double precision. */
#ifndef LP_MODEL_INIT_H
#define LP_MODEL_INIT_H
#include <stdint.h>

#include "core/rng.h"
#include "core/status.h"
#include "core/tensor.h"
#include "model/model.h"

typedef enum {
    LP_WEIGHT_INIT_PYTORCH = 0, /* uniform ±1/sqrt(H) (model/paper.h, model/lstm_moe.h); the default */
    LP_WEIGHT_INIT_KERAS        /* the Keras defaults above */
} lp_weight_init;

/* "pytorch" | "keras"; LP_ERR_ARG naming train.weight_init otherwise. */
lp_status lp_weight_init_parse(const char *s, lp_weight_init *out);

/* rows [r0, r1) of w [R,C] uniform in ±sqrt(6/(fan_in + fan_out)). */
void lp_init_glorot_rows(lp_tensor *w, int r0, int r1, int fan_in, int fan_out, lp_rng *r);

/* w [R,C] (2-d) orthogonal as Keras's Orthogonal(gain 1) makes it for the transposed [C,R] kernel: with
 * R >= C the columns are orthonormal (w^T·w = I_C), otherwise the rows (w·w^T = I_R). LP_ERR_NOMEM, or
 * LP_ERR_NUMERIC when LAPACK fails. */
lp_status lp_init_orthogonal(lp_tensor *w, lp_rng *r);

/* Every tensor of the freshly built model m as Keras would initialise it (the table above). */
lp_status lp_model_init_keras(lp_model *m, uint64_t seed);

#endif
