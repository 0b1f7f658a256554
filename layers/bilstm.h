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
 * independently. Each direction computes exactly what one LP_OP_LSTM node (layers/lstm.h) with a zero
 * initial state computes; both run as ONE fused tape op, LP_OP_BILSTM, followed by one lp_op_concat.
 * The result holds both directions' h_seq, h_last and c_last besides `out`, all differentiable (the
 * pruning statistics read the per-direction h_seq).
 *
 * Threads: with n = OpenBLAS's thread count (openblas_get_num_threads()) >= 2, the two recurrences
 * (the step loop of forward, BPTT in backward) run at the same time, the reverse direction in a second
 * thread, with OpenBLAS set to one thread meanwhile and restored after; the forward direction gets
 * ceil(n/2) threads and the reverse one floor(n/2), each splitting its batch rows over its share as
 * layers/lstm.h ("Threads") describes, so no more than n threads compute. At n = 2 that is one
 * single-threaded stream per direction instead of a two-thread GEMM per step (or a row split) per
 * direction. The big GEMMs (input projections, weight gradients, dX) run one direction after the
 * other with all n threads of OpenBLAS; both directions add into dX, so they are never concurrent.
 * With n > 2, if a direction cannot use its share (its per-step product is too large for a row split,
 * or B is smaller than the share), the layer keeps the sequential order of n = 1 instead, where
 * OpenBLAS threads each step's product over all n; n > 2 was not measured (the project's machine has
 * two cores). With n = 1 everything runs in order, forward direction first, exactly as two LP_OP_LSTM
 * nodes would. Each row's arithmetic is the same in every case and OpenBLAS splits GEMMs by rows and
 * columns, not along the summed dimension, so the results do not depend on n (tests/test_lstm.c
 * checks 1 against 2 threads). Like the LSTM sequence functions, the layer must not run while another
 * thread of the process calls BLAS (it changes OpenBLAS's global thread count for the parallel part). */
#ifndef LP_BILSTM_H
#define LP_BILSTM_H

#include "core/tape.h"
#include "layers/lstm.h"

typedef struct {
    lp_tensor *out; /* [B,T,Hf+Hb] concatenated outputs */
    lp_lstm_out fw; /* forward direction: h_seq [B,T,Hf], h_last, c_last [B,Hf] */
    lp_lstm_out bw; /* reverse direction: h_seq [B,T,Hb], h_last, c_last [B,Hb] (state after t = 0) */
} lp_bilstm_out;

/* x [B,T,F]; fw/bw weights with w_ih [4Hf,F] / [4Hb,F] (b may be NULL: no bias); lengths [B] ints in
 * [0,T] or NULL (copied: the array need not outlive the call); zero initial states. On failure
 * (allocation, or a length outside [0,T]: LP_ERR_ARG) every tensor of the result is NULL and the
 * message is recorded; a NULL x or weight also gives an all-NULL result. The node's backward
 * overwrites its saved gates with their gradients, so it runs once per forward. */
lp_bilstm_out lp_bilstm(lp_tape *tp, lp_tensor *x, const lp_lstm_weights *fw, const lp_lstm_weights *bw,
                        const int *lengths);

#endif
