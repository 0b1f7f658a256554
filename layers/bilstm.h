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
 * independently. Each direction computes exactly what one `lstm` node (layers/lstm.h) with a zero
 * initial state computes; both run as ONE fused tape op, `bilstm`, followed by one lp_op_concat.
 * The result holds both directions' h_seq, h_last and c_last besides `out`, all differentiable (the
 * pruning statistics read the per-direction h_seq).
 *
 * Threads: the directions are independent in forward and in BPTT, so with n = OpenBLAS's thread count
 * (openblas_get_num_threads()) >= 2 they run at the same time, the reverse direction in a second
 * thread, with OpenBLAS set to one thread meanwhile and restored after; no more than n threads compute.
 *   n = 1: one direction after the other, forward first, exactly as two `lstm` nodes would.
 *   n = 2: each direction runs its whole sequence in its own single-threaded stream (input projection
 *          and recurrence; BPTT and the parameter gradients dW_ih, dW_hh, db), the two meeting once
 *          per pass: no multi-threaded GEMM at all, the small per-step ones included ([B,H]·[H,4H],
 *          far too small to thread well). dX, to which both directions add, is computed after the
 *          join, one direction after the other, with both OpenBLAS threads.
 *   n > 2: one single-threaded stream per direction would leave cores idle in the big GEMMs, so only
 *          the recurrences run at once, the forward direction on ceil(n/2) threads and the reverse one
 *          on floor(n/2), each splitting its batch rows over its share as layers/lstm.h ("Threads")
 *          describes; the big GEMMs run one after the other with all n threads. If a direction cannot
 *          use its share (in fp32 a per-step product too large for a row split, or B below the share), the
 *          order of n = 1 is kept, where OpenBLAS threads every GEMM over all n. (Not measured: the
 *          project's machine has two cores; tested for correctness at 3 and 4 threads.)
 * The gradients of each direction are summed in the same order in every case (dX: reverse direction
 * first, as the tape ran the two `lstm` nodes), each batch row's arithmetic does not depend on the
 * split, and OpenBLAS splits GEMMs by rows and columns, never along the summed dimension, so the results
 * are the same bits at every thread count and equal to the former composition (two `lstm` nodes and
 * a concat); tests/test_lstm.c checks both. Like the LSTM sequence functions, the layer must not run
 * while another thread of the process calls BLAS (it changes OpenBLAS's global thread count). */
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
