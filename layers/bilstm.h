/* bilstm: a bidirectional LSTM layer — a forward LSTM and a reverse LSTM over the same input, their
 * outputs concatenated per step.
 *
 *     out[b,t] = [ fw.h_seq[b,t] (Hf values) , bw.h_seq[b,t] (Hb values) ]        out is [B,T,Hf+Hb]
 *
 * The backward direction is aligned to input time: bw.h_seq[b,t] is the reverse LSTM's state after it
 * has read x[b,T'-1] .. x[b,t] (T' = the sequence's length). With lengths, the reverse direction starts
 * at its last valid step (PyTorch packed-sequence semantics) and padding steps output 0 in both halves.
 *
 * The two directions are separate unit groups with their own sizes Hf and Hb: after pruning they shrink
 * independently. Both are fused LP_OP_LSTM nodes (layers/lstm.h) joined by one lp_op_concat. */
#ifndef LP_BILSTM_H
#define LP_BILSTM_H

#include "core/tape.h"
#include "layers/lstm.h"

typedef struct {
    lp_tensor *out; /* [B,T,Hf+Hb] concatenated outputs */
    lp_lstm_out fw; /* forward direction: h_seq [B,T,Hf], h_last, c_last [B,Hf] */
    lp_lstm_out bw; /* reverse direction: h_seq [B,T,Hb], h_last, c_last [B,Hb] (state after t = 0) */
} lp_bilstm_out;

/* x [B,T,F]; fw/bw weights with w_ih [4Hf,F] / [4Hb,F]; lengths [B] or NULL; zero initial states.
 * On failure every tensor of the result is NULL and the message is recorded. */
lp_bilstm_out lp_bilstm(lp_tape *tp, lp_tensor *x, const lp_lstm_weights *fw, const lp_lstm_weights *bw,
                        const int *lengths);

#endif
