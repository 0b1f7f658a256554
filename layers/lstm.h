/* lstm: one LSTM layer over a whole sequence, as ONE fused tape op (`lstm`), and the plain kernels
 * it is built from.
 *
 * The layer (gate order i, f, g, o everywhere in the project):
 *
 *     gates_t = x_t·W_ih^T + h_{t-1}·W_hh^T + b          x_t [B,F], W_ih [4H,F], W_hh [4H,H], b [4H]
 *     i = σ(gates_t[0:H])   f = σ(gates_t[H:2H])   g = tanh(gates_t[2H:3H])   o = σ(gates_t[3H:4H])
 *     c_t = f ⊙ c_{t-1} + i ⊙ g        h_t = o ⊙ tanh(c_t)
 *
 * docs/METHOD.md ("LSTM forward" and "LSTM backward (BPTT)") has the equations exactly as implemented,
 * with the backward pass and the masking rule. Data is batch-major: x is [B,T,F], h_seq is [B,T,H].
 *
 * How the work is arranged (why it is fast):
 *   - the input projection of ALL steps is one large GEMM: [B*T,F]·W_ih^T -> gates [B*T,4H];
 *   - each step adds h_{t-1}·W_hh^T into that step's rows of `gates` with one GEMM whose leading
 *     dimension (T*4H) skips the other steps, so nothing is copied;
 *   - one vectorisable loop applies the bias, the gate nonlinearities and the cell update;
 *   - backward computes the pre-activation gate gradients dG step by step (BPTT, one [B,4H]·[4H,H]
 *     GEMM per step for dh_{t-1}) and then all weight gradients as three large GEMMs over the B*T rows:
 *     dW_ih += dG^T·X, dW_hh += dG^T·H_prev, dX += dG·W_ih (and db += column sums of dG), where H_prev
 *     is the output h_seq shifted by one row (plus a B-row correction for h0), not a saved copy;
 *   - training saves only the activated gates and c_t besides the output (see "kernels" below).
 *
 * Sequence lengths (optional, one per batch row): steps t >= length are padding. They leave h and c
 * unchanged, output 0 and receive no gradient; h_last/c_last are the state after `length` steps. With
 * `reverse` the layer runs t = T-1 .. 0; the padding steps then come first and leave the initial state
 * untouched, so the real work starts at t = length-1 with h0/c0 — exactly PyTorch's packed-sequence
 * semantics for the backward direction of a bidirectional LSTM.
 *
 * Threads: OpenBLAS threads the big GEMMs (oneDNN in bf16). When the per-step product is small
 * (B·4H·H < 2^25), or always in bf16 (where the parts share one prepared W_hh, core/gemm.h), the
 * recurrence (lp_lstm_forward_seq / lp_lstm_backward_seq, hence the op) splits the batch rows over
 * OpenBLAS's thread count, one thread per part running every step with OpenBLAS set to one thread
 * meanwhile (restored after), so no more threads compute than that setting allows. The step kernels
 * are re-entrant; the sequence functions must not run while another thread of the process calls BLAS
 * (they change OpenBLAS's global thread count for their duration). */
#ifndef LP_LSTM_H
#define LP_LSTM_H

#include "core/gemm.h"
#include "core/params.h"
#include "core/tape.h"

/* ---- the tape op ------------------------------------------------------------------------------ */

/* The three parameter tensors of one LSTM layer (one unit group): w_ih [4H,F], w_hh [4H,H], b [4H]. */
typedef struct {
    lp_tensor *w_ih, *w_hh, *b;
} lp_lstm_weights;

/* Declare one layer's tensors in ps, in this order: "<prefix>.w_ih" [4H,F], "<prefix>.w_hh" [4H,H],
 * "<prefix>.b" [4H] (rows in gate order i, f, g, o). 0 on success; -1, as lp_params_declare, with the
 * error recorded (a duplicate name or no memory). */
int lp_lstm_declare(lp_params *ps, const char *prefix, int H, int F);

/* After lp_params_finalize: the views of "<prefix>.w_ih", ".w_hh" and ".b" (NULL where not declared). */
lp_lstm_weights lp_lstm_find(lp_params *ps, const char *prefix);

typedef struct {
    lp_tensor *h_seq;  /* [B,T,H] output at every step (0 at padding steps) */
    lp_tensor *h_last; /* [B,H] hidden state after the last valid step */
    lp_tensor *c_last; /* [B,H] cell state after the last valid step */
} lp_lstm_out;

/* Run the layer on x [B,T,F] with w_ih [4H,F], w_hh [4H,H], b [4H] (b may be NULL: no bias).
 * h0, c0 [B,H] are the initial state (NULL: zeros). `lengths` (B ints in [0,T], or NULL for all T) is
 * copied, so the caller's array need not outlive the call. `reverse` != 0 runs the sequence backwards.
 * All three outputs are differentiable. On failure (allocation, or a length outside [0,T]: LP_ERR_ARG)
 * every member is NULL and the message is recorded; a NULL x or weight also gives all-NULL outputs.
 * The node's backward overwrites its saved gates with their gradients, so it runs once per forward. */
lp_lstm_out lp_lstm(lp_tape *tp, lp_tensor *x, lp_tensor *w_ih, lp_tensor *w_hh, lp_tensor *b, lp_tensor *h0,
                    lp_tensor *c0, const int *lengths, int reverse);

/* ---- kernels (plain float arrays; the op above is these plus bookkeeping) ---------------------- */

/* State saved for backward, besides the activated gates: only cs [B,T,H], the cell state c_t after each
 * step (0 at padding). The state entering step t is read from the neighbouring row of cs (h from the
 * neighbouring row of the output h_seq) or, at a sequence's first processed step, from c0 (h0), and
 * tanh(c_t) is recomputed with the same function as in forward (so the values are identical): 5·BTH
 * floats per layer instead of 7·BTH with separate copies of h_{t-1}, c_{t-1} and tanh(c_t). */

/* gates = x·w_ih^T for all rows at once (the bias is added later, in the cell loop).
 * gates is [BT,4H], x is [BT,F], w_ih is [4H,F]. */
void lp_lstm_input_proj(float *gates, const float *x, const float *w_ih, int BT, int F, int H);

/* Forward of time step t for batch rows [b0, b1) (all rows: 0, B; a thread's share: layers/lstm_par.c).
 * gates  [B,T,4H]  in: row (b,t) holds x_t·W_ih^T; out: the activated gates i,f,g,o (valid rows only)
 * h, c   [B,H]     the state before the step; updated in place where t < lengths[b]
 * h_seq  [B,T,H]   out: row (b,t) = new h, or 0 at a padding step
 * cs     [B,T,H] or NULL (inference): out: row (b,t) = new c, or 0 at a padding step
 * w_hh [4H,H], b [4H] or NULL, lengths [B] or NULL. */
void lp_lstm_step_forward(float *gates, float *h, float *c, float *h_seq, float *cs, const lp_gemm_w *w_hh,
                          const float *b, const int *lengths, int t, int b0, int b1, int T, int H);

/* Backward of time step t for batch rows [b0, b1) (call in the reverse of the forward processing order).
 * gates  [B,T,4H]  in row t: the activated gates saved by forward; out: dG, the gradient w.r.t. the
 *                  pre-activation gates (0 at padding steps)
 * dh, dc [B,H]     in: gradient w.r.t. the state after the step; out: w.r.t. the state before it
 * dh_seq [B,T,H] or NULL: gradient of the step outputs (ignored at padding steps, whose output is 0)
 * cs     [B,T,H]   saved by forward; c0 [B,H] or NULL (zeros): the initial cell state
 * w_hh [4H,H]; `reverse` as in forward (it decides which row of cs holds c_{t-1}). */
void lp_lstm_step_backward(float *gates, float *dh, float *dc, const float *dh_seq, const float *cs,
                           const float *c0, const lp_gemm_w *w_hh, const int *lengths, int reverse, int t, int b0,
                           int b1, int T, int H);

/* Weight and input gradients over all BT = B*T rows at once, accumulated (+=). Any output may be NULL.
 * dgates [B,T,4H], x [B,T,F], h_seq [B,T,H] (the forward output), h0 [B,H] or NULL (zeros); dx [B,T,F],
 * dw_ih [4H,F], dw_hh [4H,H], db [4H]. dw_hh pairs each row of dG with the output row of the step before
 * it in processing order (one GEMM over BT-1 rows) and then replaces, with one small GEMM over B rows,
 * the pairs of each sequence's first processed step by h0. work: scratch of B·5H floats (dw_hh only). */
void lp_lstm_weight_backward(float *dx, float *dw_ih, float *dw_hh, float *db, float *work, const float *dgates,
                             const float *x, const float *h_seq, const float *h0, const float *w_ih,
                             const int *lengths, int reverse, int B, int T, int F, int H);

/* The whole forward sequence: input projection, then every step in processing order.
 * h, c [B,H] hold h0/c0 on entry and h_last/c_last on return. Buffers as in the step kernels. */
void lp_lstm_forward_seq(float *h_seq, float *h, float *c, float *gates, float *cs, const float *x,
                         const float *w_ih, const float *w_hh, const float *b, const int *lengths, int reverse,
                         int B, int T, int F, int H);

/* The whole backward sequence (BPTT, then the batched weight gradients). dh, dc [B,H] hold the
 * gradients of h_last/c_last on entry and those of h0/c0 on return. `gates` is overwritten by dG.
 * h0, c0 [B,H] or NULL: the initial state the forward pass started from. work: B·5H floats. */
void lp_lstm_backward_seq(float *dx, float *dw_ih, float *dw_hh, float *db, float *dh, float *dc, float *gates,
                          float *work, const float *dh_seq, const float *x, const float *h_seq, const float *cs,
                          const float *h0, const float *c0, const float *w_ih, const float *w_hh,
                          const int *lengths, int reverse, int B, int T, int F, int H);

/* The recurrence alone, for callers that arrange their own threads (layers/bilstm runs the two
 * directions at once): lp_lstm_recur_forward is lp_lstm_forward_seq after lp_lstm_input_proj (gates
 * holds x·W_ih^T on entry), lp_lstm_recur_backward is lp_lstm_backward_seq before
 * lp_lstm_weight_backward. The batch rows are split into `parts` contiguous parts, one thread each
 * (part 0 in the caller's thread; 1 = no split); each row's arithmetic is the same whatever the split.
 * Unlike the sequence functions these never change OpenBLAS's thread count: with parts > 1, or while
 * another thread calls BLAS, the caller has set it to one. */
void lp_lstm_recur_forward(float *h_seq, float *h, float *c, float *gates, float *cs, const float *w_hh,
                           const float *b, const int *lengths, int reverse, int B, int T, int H, int parts);
void lp_lstm_recur_backward(float *gates, float *dh, float *dc, const float *dh_seq, const float *cs,
                            const float *c0, const float *w_hh, const int *lengths, int reverse, int B, int T,
                            int H, int parts);

/* How many parts the sequence functions split the recurrence of B rows and H units into when `threads`
 * threads are available (the rule of "Threads" above: 1 for large per-step products in fp32, else
 * min(threads, B, 16)). */
int lp_lstm_recur_parts(int B, int H, int threads);

/* The activations used by the kernels are lp_fast_sigmoid and lp_fast_tanh (core/fastmath.h):
 * vectorisable, |error| < 4e-7 against float64 (tested on a dense grid over [-40,40]); NaN gives NaN. */

#endif
