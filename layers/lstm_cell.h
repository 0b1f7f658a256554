/* lstm_cell: the LSTM written step by step with the primitive tape ops — the readable version.
 *
 * This is the same layer as layers/lstm.h (same gate order i,f,g,o, same lengths and reverse rules,
 * same outputs) but every operation is one node on the tape, so the graph reads like the equations in
 * docs/METHOD.md and autograd derives BPTT by itself:
 *
 *     pre   = x_t·W_ih^T + h·W_hh^T + b          matmul, matmul, add, bias_add    [B,4H]
 *     i,f,g,o = split(pre)                        split into four [B,H] blocks
 *     i = σ(i)  f = σ(f)  g = tanh(g)  o = σ(o)   sigmoid, tanh
 *     c' = f⊙c + i⊙g                              mul, mul, add
 *     h' = o⊙tanh(c')                             tanh, mul
 *
 * and with lengths, per step t, a constant mask m (1 for rows with t < length, else 0):
 *     h = m⊙h' + (1−m)⊙h     c = m⊙c' + (1−m)⊙c     output_t = m⊙h'
 *
 * It exists for teaching and as an independent check of the fused op (tests/test_lstm.c shows both
 * give the same outputs and gradients). It is slow: ~15 nodes and small GEMMs per step; use lp_lstm. */
#ifndef LP_LSTM_CELL_H
#define LP_LSTM_CELL_H

#include "core/tape.h"
#include "layers/lstm.h"

/* One step: x_t [B,F], h, c [B,H] -> *h_new, *c_new [B,H]. Outputs NULL on failure (NULL input or
 * out of memory); returns LP_OK or the error. */
lp_status lp_lstm_cell_step(lp_tape *tp, lp_tensor *x_t, lp_tensor *h, lp_tensor *c, const lp_lstm_weights *w,
                            lp_tensor **h_new, lp_tensor **c_new);

/* The whole sequence with the contract of lp_lstm (layers/lstm.h): x [B,T,F], h0/c0 [B,H] or NULL,
 * lengths [B] in [0,T] or NULL, reverse. Outputs all NULL on failure. */
lp_lstm_out lp_lstm_cell_seq(lp_tape *tp, lp_tensor *x, const lp_lstm_weights *w, lp_tensor *h0, lp_tensor *c0,
                             const int *lengths, int reverse);

#endif
