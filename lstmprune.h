/* lstmprune.h — the front door: structured pruning of LSTMs via eigenanalysis and geometric median
 * (Gkalelis & Mezaris, ISM 2020). One header for a program that trains an LSTM, prunes it and ships the
 * smaller model; the whole flow, as tests/test_front_door.c runs it:
 *
 *     #include "lstmprune.h"
 *
 *     // data: YouTube-8M-format TFRecords (here synthetic: 600 videos, 6 classes)
 *     lp_synth_config sc;  lp_synth_config_default(&sc, 6, 1);
 *     lp_synth_write_opts wo;  lp_synth_write_opts_default(&wo);
 *     wo.out_dir = "data";  wo.videos = 600;
 *     LP_TRY(lp_synth_write(&sc, &wo));
 *
 *     // the paper model on that data: a run configuration (model/runcfg.h; the rest gets defaults)
 *     lp_kv cfg;  lp_kv_init(&cfg);
 *     lp_kv_set(&cfg, "data.train", "data/train*.tfrecord");
 *     lp_kv_set(&cfg, "data.valid", "data/validate*.tfrecord");
 *     lp_kv_set(&cfg, "data.classes", "6");
 *     lp_kv_set(&cfg, "model.arch", "paper");  lp_kv_set(&cfg, "model.hidden", "16");
 *     lp_kv_set(&cfg, "train.epochs", "2");    lp_kv_set(&cfg, "train.batch", "32");
 *
 *     // train (the one trainer: train.tsv / valid.tsv logs, last.ckpt / best.ckpt, exact resume)
 *     lp_train_opts to = {.run_dir = "run", .quiet = 1};
 *     lp_train_result tr;
 *     LP_TRY(lp_train(&lp_video_task_kind, &cfg, &to, &tr));
 *
 *     // one training step by hand, to see what the trainer does: forward on the tape, backward, update
 *     lp_task *t;  LP_TRY(lp_video_task_load("run/best.ckpt", NULL, &t));
 *     lp_tape tape;  LP_TRY(lp_tape_init(&tape, 1 << 24));
 *     lp_rng drop;   lp_rng_init(&drop, 1, LP_RNG_STREAM_DROPOUT);
 *     lp_optim opt;  lp_optim_config oc = lp_optim_defaults(LP_OPTIM_ADAM);
 *     LP_TRY(lp_optim_init(&opt, t->params->numel, &oc));
 *     LP_TRY(t->ops->epoch_begin(t, 0, 0));
 *     LP_TRY(t->ops->next_batch(t));                                           // one step's batch
 *     lp_task_batch b;  LP_TRY(t->ops->train_forward(t, &tape, &drop, 0, 1, &b)); // all of it; b.loss: mean BCE
 *     lp_params_zero_grad(t->params);
 *     LP_TRY(lp_tape_backward(&tape, b.objective));
 *     LP_TRY(lp_optim_step(&opt, t->params->data, t->params->grad, 1e-3f));
 *
 *     // prune: response statistics → eigen rates → geometric median → a physically smaller model
 *     lp_prune_opts po;  lp_prune_opts_default(&po);  po.rates.target_rate = 0.5;
 *     lp_prune_plan plan;  LP_TRY(lp_prune_plan_run(t, &po, &plan));
 *     lp_task *small;      LP_TRY(lp_surgery_shrink(t, &plan, &small));
 *
 *     // score and save the smaller model (an ordinary checkpoint: `lstmprune eval` / `info` read it)
 *     lp_score s;  LP_TRY(lp_task_score(small, LP_SPLIT_VALID, &s));      // lp_score_get(&s, "gap")
 *     lp_ckpt c;   lp_ckpt_init(&c);
 *     LP_TRY(lp_task_save(small, &c));  LP_TRY(lp_ckpt_save(&c, "small.ckpt"));
 *     lp_ckpt_free(&c);  lp_task_free(small);  lp_prune_plan_free(&plan);  ...
 *
 * The same calls prune the Penn Treebank language model: its task is lp_lm_task_kind (tasks/lm_task.h).
 * Every function returns an lp_status (core/status.h); lp_last_error() says what went wrong, naming the
 * file, record and byte offset for bad input. Messages for a person go to a sink the program sets
 * (core/log.h); the library prints nothing by itself. Build a program against the library (`make`
 * writes build/lstmprune.pc, the include path and every library it needs; the programs of examples/ are
 * built this way and docs/TUTORIAL.md walks through them):
 *
 *     make && cc -std=c11 -O2 prog.c $(pkg-config --cflags --libs build/lstmprune.pc)
 *
 * The floors, each using only those below it (README.md, "Layout"):
 *   core/         status, allocation, RNG streams, arenas, tensors, the autograd tape, parameters, config
 *                 text, checkpoints, CRC32C, the log sink
 *   data/ layers/ optim/ eval/    TFRecords and YouTube-8M decoding, batches, synthetic data; the LSTM
 *                 (fused BPTT), BiLSTM, dense and mixture-of-experts ops; Adam/SGD, clipping, schedules;
 *                 GAP@k, mAP, Hit@1, PERR
 *   prune/        the method: unit groups, the task interface, statistics, eigen rates, criteria, plan,
 *                 surgery, mean compensation, ISS
 *   model/ lm/    the video classifiers; the word-level language model and Penn Treebank reading
 *   tasks/        the two tasks: the video classifiers and the language model with their data
 *   train/        the one trainer
 *   experiments/  the runner: pipeline (schedules), report, sensitivity, sweep; trace (a look inside)
 *   cli/          the `lstmprune` command (the only code that writes to the terminal) */
#ifndef LSTMPRUNE_H
#define LSTMPRUNE_H

#include "core/ckpt.h"
#include "core/kv.h"
#include "core/log.h"
#include "core/params.h"
#include "core/rng.h"
#include "core/status.h"
#include "core/tape.h"
#include "data/batcher.h"
#include "data/synth.h"
#include "experiments/pipeline.h"
#include "experiments/sensitivity.h"
#include "experiments/sweep.h"
#include "optim/optim.h"
#include "prune/plan.h"
#include "prune/surgery.h"
#include "prune/task.h"
#include "tasks/lm_task.h"
#include "tasks/video_task.h"
#include "train/trainer.h"

#endif
