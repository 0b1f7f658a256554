/* trace: a look inside a trained model. For one input sequence — a video by its id, or one sentence of
 * the Penn Treebank text — every unit group's gates i, f, g, o, cell state c and output h at every step
 * the model reads, beside the response statistics the pruning method uses and the units a plan removes:
 * what `lstmprune trace` writes (docs/CLI.md; the files in docs/FORMATS.md, "Trace").
 *
 * The trace sees what inference sees. The first layer reads the sequence as the model's own forward pass
 * does, without dropout:
 *   video  the frames as the evaluation batcher gives them (the first data.max_frames, each
 *          L2-normalised unless data.l2norm = 0) for the steps the model reads: the video's own frames
 *          under data.padding = mask; all max_frames steps, the last frame repeated, under repeat (the
 *          model reads those too; data/batcher.h)
 *   LM     the embedding rows of the sentence's words and its <eos>, from a zero state (the sentence
 *          alone, not the text before it)
 * Every other group reads what its unit-group description (prune/unit_group.h) says feeds it: the
 * outputs of the groups whose consumer is its w_ih, each at its consumer columns (a BiLSTM's two
 * directions side by side). Each group runs the fused LSTM kernels (layers/lstm.h lp_lstm_forward_seq),
 * which keep the activated gates and the cell states the layer computes anyway. The model's own forward
 * pass then runs on the same input, and the trace records how far its hidden states are from the
 * traced ones (max_dh: 0 up to rounding, as both run the same kernels) and the model's output.
 *
 * Steps are in input time: row t of a reverse group (a BiLSTM's backward direction) is its state after
 * it has read steps T-1 down to t.
 *
 *     lp_trace_input in;
 *     LP_TRY(lp_trace_video_input(t, pats, n_pats, "vid0042", &in));    // or lp_trace_lm_input
 *     lp_trace tr;
 *     LP_TRY(lp_trace_run(t, &in, &tr));
 *     lp_prune_plan plan;
 *     LP_TRY(lp_pipeline_plan(&opts, t, ckpt, &plan));                   // what `prune` would remove
 *     lp_trace_files files;
 *     LP_TRY(lp_trace_write("out", t, &in, &tr, &plan, NULL, NULL, &files));
 *     lp_prune_plan_free(&plan); lp_trace_free(&tr); lp_trace_input_free(&in);
 */
#ifndef LP_EXPERIMENTS_TRACE_H
#define LP_EXPERIMENTS_TRACE_H
#include <stdint.h>

#include "core/kv.h"
#include "prune/plan.h"
#include "prune/task.h"

/* One input sequence as the model reads it. */
typedef struct {
    int T;          /* steps the model reads */
    int F;          /* features per step of the first layer's input */
    float *x;       /* [T,F] the first layer's input */
    /* video */
    int frames;     /* the video's real frames read (T - frames steps repeat the last one) */
    int classes;    /* C */
    float *labels;  /* [C] its labels (1/0) */
    /* LM */
    int32_t *ids;   /* [T] the words read (the sentence and its <eos>); NULL for a video */
    int32_t *next;  /* [T] the word that follows each one in the text (-1 after the text's last) */
    char what[320]; /* "video ID" or "sentence N of the valid text" */
} lp_trace_input;

/* Video `id` (the first record with that id) of the files of patterns pats[n] (glob(3), in evaluation
 * order: sorted files, records in order), as video task t's configuration reads data (features, max_frames, padding, L2 normalisation).
 * LP_ERR_ARG naming the id when no record has it (and a pattern matching no file); the reader's errors
 * (LP_ERR_IO, LP_ERR_FORMAT naming file and record) otherwise. */
lp_status lp_trace_video_input(lp_task *t, char **pats, int n, const char *id, lp_trace_input *in);

/* Sentence `sentence` (1-based: line N of the split's file) of the text of LM task t's corpus, split
 * LP_PTB_TRAIN, LP_PTB_VALID or LP_PTB_TEST: its words and the <eos> that ends it, embedded by the model.
 * LP_ERR_ARG saying how many sentences the text has when it has fewer. */
lp_status lp_trace_lm_input(lp_task *t, int split, long sentence, lp_trace_input *in);

void lp_trace_input_free(lp_trace_input *in);

/* One unit group over the sequence. */
typedef struct {
    char name[24];
    int units;      /* H */
    int reverse;    /* 1: read from the last step down */
    float *gates;   /* [T,4H] activated gates at step t: i in [0,H), f in [H,2H), g in [2H,3H), o in [3H,4H) */
    float *c;       /* [T,H] cell state after step t */
    float *h;       /* [T,H] output after step t */
} lp_trace_group;

typedef struct {
    int T;
    int n_groups;
    lp_trace_group g[LP_MAX_GROUPS];
    double max_dh;  /* largest |h − the model's own forward pass's h| over groups, steps and units */
    int n_out;
    float *out;     /* the model's own output: video [C] class probabilities; LM [T] the probability of
                     * the next word at each step (NaN after the text's last word) */
} lp_trace;

/* Trace the model of task t (video or LM) on `in`. LP_ERR_ARG when a group's input is not what its
 * description says (a model whose groups are not listed producers first); LP_ERR_NOMEM. */
lp_status lp_trace_run(lp_task *t, const lp_trace_input *in, lp_trace *tr);
void lp_trace_free(lp_trace *tr);

/* What lp_trace_write wrote. */
typedef struct {
    int n_png;                   /* PNGs drawn (0 where gnuplot is missing or failed) */
    int gnuplot_failed;          /* 1: gnuplot ran and reported errors (DIR/trace.log) */
} lp_trace_files;

/* Write into dir (made if missing): gates.csv, units.csv, groups.csv, output.csv (video) or steps.csv
 * (LM), trace.gp and, where gnuplot runs, one heatmap PNG per group (<group>.png); with cfg also
 * config.txt (the run's keys), with command also command.txt. `plan` (may be NULL: no statistics and
 * no pruned units) must be of t's model. */
lp_status lp_trace_write(const char *dir, const lp_task *t, const lp_trace_input *in, const lp_trace *tr,
                         const lp_prune_plan *plan, const lp_kv *cfg, const char *command, lp_trace_files *files);

#endif
