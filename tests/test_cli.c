/* test_cli: the lstmprune binary as a user meets it — exit codes (0 ok, 1 runtime error, 2 usage
 * error), messages that name the bad flag / file / record, and the user-facing file formats
 * (Kaggle predictions, eval output, info). The binary is $LP_BIN (set by the Makefile). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/fileio.h"
#include "tests/common/markov_corpus.h"
#include "tests/common/refdata.h"
#include "tests/common/scratch.h"

static char out_buf[1 << 16];

/* Run "$LP_BIN args" with stdout+stderr captured into out_buf; returns the exit code. */
static int run(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = lp_test_runv(out_buf, sizeof out_buf, "", fmt, ap);
    va_end(ap);
    return rc;
}

static int setup(void **state) {
    (void)state;
    if (lp_test_scratch_make("cli") != 0) return -1;
    /* A tiny data set and a tiny trained model used by several tests. */
    if (run("synth --out data --videos 120 --classes 5 --frames-min 4 --frames-max 10 --seed 2 --quiet") != 0) return -1;
    if (run("train --train 'data/train*.tfrecord' --valid 'data/validate*.tfrecord' --classes 5 --hidden 8 --batch 16 "
            "--epochs 1 --out run --quiet") != 0) {
        fprintf(stderr, "%s\n", out_buf);
        return -1;
    }
    return 0;
}

static void test_help_and_unknown(void **state) {
    (void)state;
    assert_int_equal(run("--help"), 0);
    const char *cmds[] = {"synth", "inspect", "train", "finetune", "eval", "predict", "info", "prune", "pipeline"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) assert_non_null(strstr(out_buf, cmds[i]));
    assert_int_equal(run("frobnicate"), 2);
    assert_non_null(strstr(out_buf, "unknown command 'frobnicate'"));
    assert_int_equal(run("train --help"), 0);
    assert_non_null(strstr(out_buf, "[default: 0.0002]")); /* --lr shows the paper default */
    assert_non_null(strstr(out_buf, "[default: 160]"));
    assert_int_equal(run("synth -h"), 0); /* defaults from the generator's own configuration */
    assert_non_null(strstr(out_buf, "--videos N               number of videos [default: 1000]"));
    assert_non_null(strstr(out_buf, "--window-jitter X        random cut of each label's trajectory at either end [default: 0.2]"));
    assert_int_equal(run("inspect --help"), 0);
    assert_non_null(strstr(out_buf, "[default: 3862]"));
}

/* docs/CLI.md shows every subcommand's --help exactly as the binary prints it (the page drifted once). */
static void test_cli_md_has_every_help(void **state) {
    (void)state;
    char *doc;
    size_t len;
    assert_int_equal(lp_file_read_all("docs/CLI.md", &doc, &len), LP_OK);
    const char *cmds[] = {"synth", "inspect", "train", "finetune", "eval", "predict", "info", "prune", "pipeline",
                          "sweep", "sensitivity", "trace", "lm-train", "lm-eval", "lm-prune", "lm-sensitivity",
                          "gradcheck", "export"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        assert_int_equal(run("%s --help", cmds[i]), 0);
        size_t n = strlen(out_buf);
        while (n && out_buf[n - 1] == '\n') out_buf[--n] = '\0';
        if (!strstr(doc, out_buf)) fprintf(stderr, "docs/CLI.md lacks the current `lstmprune %s --help`\n", cmds[i]);
        assert_non_null(strstr(doc, out_buf));
    }
    free(doc);
}

/* Each bad command line is a usage error (exit 2) whose message contains the needle. */
static void test_bad_flags_are_usage_errors(void **state) {
    (void)state;
    static const char *const cases[][2] = {
        {"train --train x --out y --lr abc", "--lr: 'abc' is not a number"},
        {"train --train x --out y --epochs 0", "--epochs"},
        {"train --train x", "--out"},
        {"train --bogus 1", "--bogus"},
        {"pipeline --train x --out y --model resnet", "resnet"},
        {"prune --checkpoint run/best.ckpt --out p --criterion median", "median"},
        /* --compensate: the value, and the schedules it does not apply to */
        {"prune --checkpoint run/best.ckpt --out p --compensate median", "--compensate must be none or mean, got 'median'"},
        {"sensitivity --checkpoint run/best.ckpt --out s --compensate yes", "--compensate must be none or mean, got 'yes'"},
        {"lm-prune --checkpoint x --out y --compensate mean --iss-lambda 0.1", "does not apply to ISS"},
        {"lm-sensitivity --checkpoint x --out y --rates 0.5,1.5", "--rates: '0.5,1.5' is not a comma-separated list"},
        {"lm-sensitivity --checkpoint x --out y --compensate yes", "--compensate must be none or mean, got 'yes'"},
        {"lm-sensitivity --out y", "--checkpoint CKPT and --out DIR are required"},
        /* issue 23: values beyond the run's own bounds are usage errors naming the flag, found before the
         * run starts (each was a runtime error, exit 1, once the data or model was opened) */
        {"lm-train --data ptb --out y --units 0", "--units: lm.units = '0'"},
        {"lm-train --data ptb --out y --dropout 2", "--dropout: lm.dropout = 2"},
        {"lm-train --data ptb --out y --dropout 1", "--dropout: lm.dropout = 1 is outside [0, 1)"},
        {"lm-train --data ptb --out y --max-words 1", "--max-words: data.max_words = 1"},
        {"lm-train --data ptb --out y --layers 9", "--layers: lm.layers = 9"},
        {"lm-train --data ptb --out y --init-scale 0", "--init-scale: lm.init_scale"},
        {"lm-train --data ptb --out y --batch 1000000000", "--batch: train.batch = 1000000000"},
        {"lm-train --data ptb --out y --lr-decay 0", "--lr-decay: train.lr_decay"},
        {"lm-train --data ptb --out y --momentum 1", "--momentum: train.momentum = 1"},
        {"lm-train --data ptb --out y --eval-bptt 1000000000", "--eval-bptt: train.eval_bptt"},
        {"train --train 'data/train*' --out y --classes 5 --batch 1000000000", "--batch: train.batch = 1000000000 is outside [1, 1048576]"},
        {"train --train 'data/train*' --out y --classes 5 --hidden 1000000000", "--hidden: model.hidden = 1000000000"},
        {"train --train 'data/train*' --out y --classes 5 --lr 0", "--lr: train.lr = 0 is outside (0, inf]"},
        {"train --train 'data/train*' --out y --classes 5 --lr-decay 2", "--lr-decay: train.lr_decay = 2"},
        {"train --train 'data/train*' --out y --classes 5 --bias-lr-mult 0", "--bias-lr-mult: train.bias_lr_mult"},
        {"train --train 'data/train*' --out y --classes 5 --prefetch 65", "--prefetch: data.prefetch = 65"},
        {"train --train 'data/train*' --out y --classes 5 --shuffle-buffer 99999999", "--shuffle-buffer: data.shuffle_buffer"},
        {"finetune --init run/best.ckpt --train 'data/train*' --out y --max-frames 2000000", "--max-frames: data.max_frames"},
        {"eval --checkpoint run/best.ckpt --data 'data/test*' --eval-batch 1000000000", "--eval-batch: train.eval_batch"},
        {"prune --checkpoint run/best.ckpt --out y --max-frames 2000000", "--max-frames: data.max_frames"},
        {"sensitivity --checkpoint run/best.ckpt --out y --prefetch 100", "--prefetch: data.prefetch"},
        /* the evaluation windows of the LM commands (an allocation of B x T ids that failed), the latency
         * measurement's sizes, a threshold that removes nothing, and a message that did not name --dropout */
        {"lm-eval --checkpoint x --batch 1000000000", "--batch: train.eval_batch = 1000000000"},
        {"lm-eval --checkpoint x --bptt 1000000000", "--bptt: train.eval_bptt = 1000000000"},
        {"lm-prune --checkpoint x --out y --eval-batch 1000000000", "--eval-batch: train.eval_batch"},
        {"lm-prune --checkpoint x --out y --eval-bptt 1000000000", "--eval-bptt: train.eval_bptt"},
        {"lm-prune --checkpoint x --out y --stats-bptt 1000000000", "--stats-bptt: prune.stats_bptt"},
        {"lm-sensitivity --checkpoint x --out y --eval-batch 1000000000", "--eval-batch: train.eval_batch"},
        {"lm-sensitivity --checkpoint x --out y --eval-bptt 1000000000", "--eval-bptt: train.eval_bptt"},
        {"prune --checkpoint run/best.ckpt --out y --latency-batch 1000000000", "--latency-batch: prune.latency_batch"},
        {"prune --checkpoint run/best.ckpt --out y --latency-frames 1000000000", "--latency-frames: prune.latency_frames"},
        {"prune --checkpoint run/best.ckpt --out y --latency-reps 1000000000", "--latency-reps: prune.latency_reps"},
        {"pipeline --train 'data/train*' --out y --classes 5 --latency-batch 1000000000", "--latency-batch: prune.latency_batch"},
        {"prune --checkpoint run/best.ckpt --out y --iss-threshold 0", "--iss-threshold: prune.iss_threshold = 0 is outside (0, inf]"},
        {"pipeline --train 'data/train*' --out y --classes 5 --iss-threshold 0", "--iss-threshold: prune.iss_threshold"},
        {"train --train 'data/train*' --out y --classes 5 --dropout 2", "--dropout: model.dropout = 2 is outside [0, 1)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = run("%s", cases[i][0]);
        if (rc != 2 || !strstr(out_buf, cases[i][1])) fprintf(stderr, "`%s`: exit %d, %s\n", cases[i][0], rc, out_buf);
        assert_int_equal(rc, 2);
        assert_non_null(strstr(out_buf, cases[i][1]));
    }
    /* the checks come before the run directory is made */
    assert_int_equal(access(lp_test_scratch_path("y"), F_OK), -1);
}

/* A directory where a file is expected is named as such (it was "read failed" or a failed rename after
 * writing the whole file). */
static void test_directory_as_file(void **state) {
    (void)state;
    assert_int_equal(run("info data"), 1);
    assert_non_null(strstr(out_buf, "data: is a directory, not a file"));
    assert_int_equal(run("inspect data"), 1);
    assert_non_null(strstr(out_buf, "data: is a directory, not a file"));
    assert_int_equal(run("lm-train --config data --out y"), 2);
    assert_non_null(strstr(out_buf, "data: is a directory, not a file"));
    assert_int_equal(run("predict --checkpoint run/best.ckpt --data 'data/test*' --out data --quiet"), 1);
    assert_non_null(strstr(out_buf, "data: is a directory, not a file"));
}

/* Training on a file with no records is refused and leaves no checkpoint; a run that diverges before its
 * first save does not point at a last.ckpt that does not exist. */
static void test_refused_runs(void **state) {
    (void)state;
    FILE *f = fopen(lp_test_scratch_path("empty.tfrecord"), "wb");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(run("train --train empty.tfrecord --classes 5 --hidden 8 --out e1 --quiet"), 1);
    assert_non_null(strstr(out_buf, "epoch 1 has no training batch: the training data has no records"));
    assert_int_equal(access(lp_test_scratch_path("e1/last.ckpt"), F_OK), -1);
    assert_int_equal(access(lp_test_scratch_path("e1/best.ckpt"), F_OK), -1);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/ptb", lp_test_scratch_dir());
    assert_int_equal(lp_mkdirs(dir), LP_OK);
    lp_test_markov_write_ptb(dir, 200, 3);
    /* lr 1e38 without clipping: the loss overflows within the first epoch, before any checkpoint */
    int rc = run("lm-train --data ptb --units 8 --epochs 1 --batch 4 --bptt 10 --lr 1e38 --clip 0 --init-scale 1 --out nan1 --quiet");
    if (rc != 1) fprintf(stderr, "%s\n", out_buf);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out_buf, "no checkpoint was written before it"));
    assert_null(strstr(out_buf, "last.ckpt"));
}

/* synth and inspect read their flags through the shared lp_args tables: every bad flag is a usage error
 * naming the flag and why, with the wording of the other commands. The upper bounds are checked after
 * parsing, so a command that skipped them would hand the value to the library, whose message names no flag. */
static void test_synth_inspect_bad_flags(void **state) {
    (void)state;
    static const char *const cases[][2] = {
        {"synth --videos 5", "--out DIR is required"},
        {"synth --out s --videos 0", "--videos: '0' is not an integer >= 1"},
        {"synth --out s --classes many", "--classes: 'many' is not an integer >= 2"},
        {"synth --out s --latent 1025", "--latent: '1025' is not an integer <= 1024"},
        {"synth --out s --labels-max 17", "--labels-max: '17' is not an integer <= 16"},
        {"synth --out s --zipf abc", "--zipf: 'abc' is not a number >= 0"},
        {"synth --out s --state-jitter -1", "--state-jitter: '-1' is not a number >= 0"},
        {"synth --out s --splits 0.5,0.5", "--splits: '0.5,0.5' is not three fractions"},
        {"synth --out s --splits 0.6,0.3,0.3", "--splits: '0.6,0.3,0.3' is not three fractions in [0, 1] that sum to 1"},
        {"synth --out s --frame-features rgb", "--frame-features: "},
        {"synth --out s --video-features bogus", "--video-features: "},
        {"synth --out s --video-level=1", "option '--video-level' takes no value"},
        {"synth --out s --seed", "option '--seed' needs a value"},
        {"synth --out s --bogus", "unknown option '--bogus'"},
        {"synth --out s -x", "unknown option '-x'"},
        {"synth --out s stray", "unexpected argument 'stray'"},
        {"inspect", "no input files"},
        {"inspect --classes 0 data/test0000.tfrecord", "--classes: '0' is not an integer >= 1"},
        {"inspect --classes 100001 data/test0000.tfrecord", "--classes: '100001' is not an integer <= 100000"},
        {"inspect --level sideways data/test0000.tfrecord", "--level: level must be frame, video or auto"},
        {"inspect --frame-features rgb data/test0000.tfrecord", "--frame-features: "},
        {"inspect --skip-bad=1 data/test0000.tfrecord", "option '--skip-bad' takes no value"},
        {"inspect --bogus data/test0000.tfrecord", "unknown option '--bogus'"},
        {"inspect -x data/test0000.tfrecord", "unknown option '-x'"},
        {"lm-eval -q", "unknown option '-q'"}, /* -q is --quiet only where a command has --quiet */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = run("%s", cases[i][0]);
        if (rc != 2 || !strstr(out_buf, cases[i][1])) fprintf(stderr, "`%s`: exit %d, %s\n", cases[i][0], rc, out_buf);
        assert_int_equal(rc, 2);
        assert_non_null(strstr(out_buf, cases[i][1]));
    }
    /* Nothing was written: every check comes before the output directory is made. */
    assert_int_equal(access(lp_test_scratch_path("s"), F_OK), -1);
}

/* The good values of the same flags are taken, up to the bounds themselves, and reach the data: a parser
 * that rejected or dropped them would fail here rather than in the cases above. */
static void test_synth_inspect_flags_take_effect(void **state) {
    (void)state;
    /* 16 classes, 16 labels per video (both bounds inclusive): every video carries labels 0..15. */
    int rc = run("synth --out s16 --videos 5 --classes 16 --labels-min 16 --labels-max 16 --frames-min 3 "
                 "--frames-max 3 --splits 1,0,0 --shards 2 --latent 1024 --frame-features rgb:8 --video-level -q");
    if (rc != 0) fprintf(stderr, "%s\n", out_buf);
    assert_int_equal(rc, 0);
    assert_string_equal(out_buf, ""); /* -q: no progress lines */
    assert_int_equal(run("inspect --frame-features rgb:8 --classes 16 s16/train0000.tfrecord s16/train0001.tfrecord"), 0);
    assert_non_null(strstr(out_buf, "total: 2 files, 5 records, 15 frames, 0 bad records"));
    assert_non_null(strstr(out_buf, "frames 3 x 8  labels [0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15]"));
    /* the video-level spec follows --frame-features (mean_rgb:8) */
    assert_int_equal(run("inspect -q --level video --video-features mean_rgb:8 --classes 16 s16/video/train0000.tfrecord"), 0);
    assert_non_null(strstr(out_buf, "total: 1 files, "));
    assert_null(strstr(out_buf, "record 1 @")); /* -q: the summary line only */
    /* --classes 15 puts label 15 out of range: the first record stops the run, --skip-bad counts all five */
    assert_int_equal(run("inspect --frame-features rgb:8 --classes 15 s16/train0000.tfrecord s16/train0001.tfrecord"), 1);
    assert_non_null(strstr(out_buf, "label 15 outside [0, 15)"));
    assert_non_null(strstr(out_buf, "1 bad records (stopped at the first bad record"));
    assert_int_equal(run("inspect -q --skip-bad --frame-features rgb:8 --classes 15 s16/train0000.tfrecord s16/train0001.tfrecord"), 1);
    assert_non_null(strstr(out_buf, "total: 2 files, 0 records, 0 frames, 5 bad records\n"));
}

static void test_runtime_errors_name_the_file(void **state) {
    (void)state;
    assert_int_equal(run("eval --checkpoint missing.ckpt --data 'data/test*'"), 1);
    assert_non_null(strstr(out_buf, "missing.ckpt"));
    assert_int_equal(run("train --train 'nothing*.tfrecord' --out r2 --classes 5 --hidden 8 --quiet"), 1);
    assert_non_null(strstr(out_buf, "nothing*.tfrecord"));
    /* a corrupted checkpoint: flip one byte in the tensor data */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd %s && cp run/best.ckpt bad.ckpt && printf '\\377' | dd of=bad.ckpt bs=1 seek=$(( $(stat -c %%s bad.ckpt) - 9 )) conv=notrunc 2>/dev/null", lp_test_scratch_dir());
    assert_int_equal(system(cmd), 0);
    assert_int_equal(run("info bad.ckpt"), 1);
    assert_non_null(strstr(out_buf, "CRC32C"));
    assert_int_equal(run("inspect -q %s", lp_ref_path("reference/corrupt_data_crc.tfrecord")), 1);
    assert_non_null(strstr(out_buf, "record 2 at byte offset 5930"));
}

/* lm-sensitivity on a language model lm-train made: its table names every layer, and its files exist; a
 * missing checkpoint is a runtime error naming it. */
static void test_lm_sensitivity_runs(void **state) {
    (void)state;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/ptb", lp_test_scratch_dir());
    assert_int_equal(lp_mkdirs(dir), LP_OK);
    lp_test_markov_write_ptb(dir, 200, 3);
    assert_int_equal(run("lm-train --data ptb --units 8 --epochs 1 --batch 4 --bptt 10 --out lmrun --quiet"), 0);
    int rc = run("lm-sensitivity --checkpoint lmrun/best.ckpt --out lms --rates 0.5,0.25 --quiet");
    if (rc != 0) fprintf(stderr, "%s\n", out_buf);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out_buf, "suggested rate (ppl rise <= 5%)"));
    assert_non_null(strstr(out_buf, "lstm1             8  "));
    assert_non_null(strstr(out_buf, "lstm2             8  "));
    assert_non_null(strstr(out_buf, "unpruned ppl "));
    char *buf;
    size_t len;
    assert_int_equal(lp_file_read_all(lp_test_scratch_path("lms/sensitivity.csv"), &buf, &len), LP_OK);
    assert_non_null(strstr(buf, "lstm2,8,0.5000,4,"));
    free(buf);
    assert_int_equal(run("lm-sensitivity --checkpoint missing.ckpt --out lms2"), 1);
    assert_non_null(strstr(out_buf, "missing.ckpt"));
}

/* Issue 23: a model trained with --max-words 30 on one corpus, evaluated on another whose vocabulary has
 * the same size but other words (every wN renamed xN), scored a perplexity over scrambled ids; now every
 * command that pairs an LM checkpoint with --data refuses it, naming both. */
static void test_lm_vocabulary_mismatch_refused(void **state) {
    (void)state;
    char dir[600], cmd[1400];
    snprintf(dir, sizeof dir, "%s/ptbv", lp_test_scratch_dir());
    assert_int_equal(lp_mkdirs(dir), LP_OK);
    lp_test_markov_write_ptb(dir, 200, 5);
    snprintf(cmd, sizeof cmd, "cd %s && mkdir -p ptbx && for f in ptbv/*.txt; do sed 's/w/x/g' $f > ptbx/${f#ptbv/}; done",
             lp_test_scratch_dir());
    assert_int_equal(system(cmd), 0);
    assert_int_equal(run("lm-train --data ptbv --max-words 30 --units 8 --epochs 1 --batch 4 --bptt 10 --out lmv --quiet"), 0);
    assert_int_equal(run("lm-eval --checkpoint lmv/best.ckpt"), 0); /* its own data: accepted */
    assert_null(strstr(out_buf, "warning"));
    static const char *const cases[] = {
        "lm-eval --checkpoint lmv/best.ckpt --data ptbx",
        "lm-prune --checkpoint lmv/best.ckpt --data ptbx --out lmvp --quiet",
        "lm-sensitivity --checkpoint lmv/best.ckpt --data ptbx --out lmvs --quiet",
        "lm-train --init lmv/best.ckpt --data ptbx --epochs 1 --out lmvf --quiet",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = run("%s", cases[i]);
        if (rc != 1) fprintf(stderr, "`%s`: exit %d, %s\n", cases[i], rc, out_buf);
        assert_int_equal(rc, 1);
        assert_non_null(strstr(out_buf, "lmv/best.ckpt was trained on another vocabulary than that of ptbx (both 30 words"));
    }
}

/* Issue 23: eval on records without labels (YouTube-8M's test shards) printed GAP 0.0000 and exited 0; it
 * is refused, and predict on the same data writes its predictions without scores. */
static void test_eval_without_labels_refused(void **state) {
    (void)state;
    assert_int_equal(run("synth --out nolab --videos 20 --classes 5 --frames-min 4 --frames-max 10 --seed 3 "
                         "--labels-key nolabels --quiet"), 0);
    assert_int_equal(run("eval --checkpoint run/best.ckpt --data 'nolab/test*'"), 1);
    assert_non_null(strstr(out_buf, "no labels; use predict"));
    assert_int_equal(run("predict --checkpoint run/best.ckpt --data 'nolab/test*' --out nolab.csv"), 0);
    assert_non_null(strstr(out_buf, "none labelled: no scores"));
    assert_null(strstr(out_buf, "GAP@"));
}

/* Issue 23: frame-level and video-level files of the same width in one glob were read as one data set
 * (data.level = auto decides per record); refused, naming a file of each level. Each level alone trains. */
static void test_mixed_levels_refused(void **state) {
    (void)state;
    assert_int_equal(run("synth --out mix --videos 40 --classes 5 --frames-min 3 --frames-max 6 --frame-features rgb:8 "
                         "--video-level --quiet"), 0);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "cp %s/mix/video/train0000.tfrecord %s/mix/train_v.tfrecord", lp_test_scratch_dir(),
             lp_test_scratch_dir());
    assert_int_equal(system(cmd), 0);
    const char *f = "--classes 5 --hidden 4 --frame-features rgb:8 --video-features mean_rgb:8 --epochs 1 --quiet";
    assert_int_equal(run("train --train 'mix/train*' %s --out mix1", f), 1);
    assert_non_null(strstr(out_buf, "is video-level but mix/train0000.tfrecord is frame-level: frame-level and "
                                    "video-level files cannot be mixed"));
    assert_int_equal(run("train --train 'mix/train0*' %s --out mix2", f), 0);
    assert_int_equal(run("train --train 'mix/video/train*' %s --out mix3", f), 0);
}

/* Issue 23: `prune --round-to 1000` on a small model pruned nothing without a word; it still runs (the
 * groups are kept whole, as documented) but warns. */
static void test_round_to_larger_than_groups_warns(void **state) {
    (void)state;
    assert_int_equal(run("prune --checkpoint run/best.ckpt --out rt --round-to 1000 --quiet"), 0);
    assert_non_null(strstr(out_buf, "warning: --round-to 1000 is larger than 3 of the 3 unit groups (the smallest has 4 units)"));
    assert_int_equal(run("prune --checkpoint run/best.ckpt --out rt4 --round-to 4 --quiet"), 0);
    assert_null(strstr(out_buf, "warning"));
}

/* Issue 25 item 6: finetune reads the data the way the checkpoint's model was trained to (docs/CLI.md's
 * typical session omits --classes there and failed with "data.classes = 3862 but the model predicts 5
 * classes"); a flag given still wins. The run is trained with a non-default frame cap to show that more
 * than data.classes is taken. */
static void test_finetune_inherits_data(void **state) {
    (void)state;
    assert_int_equal(run("train --train 'data/train*.tfrecord' --classes 5 --max-frames 6 --hidden 8 --batch 16 "
                         "--epochs 1 --out inh --quiet"), 0);
    assert_int_equal(run("prune --checkpoint inh/best.ckpt --target-rate 0.5 --out inhp --quiet"), 0);
    assert_int_equal(run("finetune --init inhp/pruned.ckpt --train 'data/train*.tfrecord' --epochs 1 --out inhf --quiet"), 0);
    char *buf;
    size_t len;
    assert_int_equal(lp_file_read_all(lp_test_scratch_path("inhf/config.txt"), &buf, &len), LP_OK);
    assert_non_null(strstr(buf, "data.classes = 5\n"));
    assert_non_null(strstr(buf, "data.max_frames = 6\n"));
    assert_null(strstr(buf, "data.valid = ")); /* where the data is: only from this command line */
    free(buf);
    assert_int_equal(run("finetune --init inhp/pruned.ckpt --train 'data/train*.tfrecord' --max-frames 9 --epochs 1 "
                         "--out inhf2 --quiet"), 0);
    assert_int_equal(lp_file_read_all(lp_test_scratch_path("inhf2/config.txt"), &buf, &len), LP_OK);
    assert_non_null(strstr(buf, "data.max_frames = 9\n"));
    free(buf);
    /* an explicit --classes that contradicts the model is still refused */
    assert_int_equal(run("finetune --init inhp/pruned.ckpt --train 'data/train*.tfrecord' --classes 7 --out inhf3 --quiet"), 1);
    assert_non_null(strstr(out_buf, "data.classes = 7 but the model predicts 5 classes"));
}

/* Issue 25 item 6: a forgotten --classes built a 3862-way model for 5-class data without a word. After the
 * first epoch the labels seen (classes 0..4) are compared with the model's classes: under half warns. */
static void test_forgotten_classes_warns(void **state) {
    (void)state;
    assert_int_equal(run("train --train 'data/train*.tfrecord' --hidden 8 --batch 16 --epochs 2 --out nocls --quiet"), 0);
    assert_non_null(strstr(out_buf, "warning: the training labels of epoch 1 reach only class 4, but the model predicts "
                                    "3862 classes (data.classes = 3862): is --classes missing?"));
    assert_null(strstr(strstr(out_buf, "warning") + 1, "warning")); /* once, not every epoch */
    /* 5 labels seen of 10 classes: half is not "far fewer"; of 11 it is */
    assert_int_equal(run("train --train 'data/train*.tfrecord' --classes 10 --hidden 8 --batch 16 --epochs 1 --out c10 --quiet"), 0);
    assert_null(strstr(out_buf, "warning"));
    assert_int_equal(run("train --train 'data/train*.tfrecord' --classes 11 --hidden 8 --batch 16 --epochs 1 --out c11 --quiet"), 0);
    assert_non_null(strstr(out_buf, "reach only class 4, but the model predicts 11 classes"));
}

/* Issue 25 item 8: eval and predict listed shared flags that did nothing there; they are refused now, and so
 * is an abbreviation of a flag (getopt_long took `eval --top 3` as --top-k 3: GAP@3). */
static void test_flags_that_do_nothing_refused(void **state) {
    (void)state;
    static const char *const cases[][2] = {
        {"eval --train x", "--train"},          {"eval --valid x", "--valid"},
        {"eval --shuffle-buffer 8", "--shuffle-buffer"}, {"eval --top 3", "--top"},
        {"predict --train x", "--train"},       {"predict --valid x", "--valid"},
        {"predict --shuffle-buffer 8", "--shuffle-buffer"}, {"train --epoch 3", "--epoch"},
        {"eval --top=3", "--top"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(run("%s --checkpoint run/best.ckpt --data 'data/test*.tfrecord' --out e.txt", cases[i][0]), 2);
        char want[128];
        snprintf(want, sizeof want, "unknown option '%s'", cases[i][1]);
        if (!strstr(out_buf, want)) fprintf(stderr, "%s: %s", cases[i][0], out_buf);
        assert_non_null(strstr(out_buf, want));
    }
    /* what they are still for */
    assert_int_equal(run("predict --checkpoint run/best.ckpt --data 'data/test*.tfrecord' --out p.csv --top 2 --quiet"), 0);
    assert_int_equal(run("eval --checkpoint run/best.ckpt --data 'data/test*.tfrecord' --top-k 3"), 0);
    assert_non_null(strstr(out_buf, "GAP@3"));
    assert_int_equal(run("train -q --help"), 0); /* -q stays the short --quiet */
}

/* Issue 25: a prune directory records the command line (command.txt, quoted as a shell reads it) and the
 * configuration (config.txt), and report.md names the source checkpoint and the target; the uniform
 * rule's τ is "–", never "nan". */
static void test_prune_records_command_and_config(void **state) {
    (void)state;
    assert_int_equal(run("prune --checkpoint run/best.ckpt --out rec --rate-rule uniform --target-rate 0.5 "
                         "--test 'data/test*.tfrecord' --quiet"), 0);
    char *buf;
    size_t len;
    assert_int_equal(lp_file_read_all(lp_test_scratch_path("rec/command.txt"), &buf, &len), LP_OK);
    assert_string_equal(buf, "lstmprune prune --checkpoint run/best.ckpt --out rec --rate-rule uniform --target-rate 0.5 "
                             "--test 'data/test*.tfrecord' --quiet\n");
    free(buf);
    assert_int_equal(lp_file_read_all(lp_test_scratch_path("rec/config.txt"), &buf, &len), LP_OK);
    assert_non_null(strstr(buf, "prune.checkpoint = run/best.ckpt\n"));
    assert_non_null(strstr(buf, "prune.rule = uniform\n"));
    assert_non_null(strstr(buf, "prune.target_rate = 0.5\n"));
    assert_non_null(strstr(buf, "prune.schedule = oneshot\n"));
    free(buf);
    assert_int_equal(lp_file_read_all(lp_test_scratch_path("rec/report.md"), &buf, &len), LP_OK);
    assert_non_null(strstr(buf, "- source checkpoint: run/best.ckpt\n"));
    assert_non_null(strstr(buf, "- target: mean rate 0.5\n"));
    assert_non_null(strstr(buf, "τ = –;"));
    assert_null(strstr(buf, "nan"));
    free(buf);
    /* with τ as the target, and the ISS threshold as the only one */
    assert_int_equal(run("prune --checkpoint run/best.ckpt --out rec2 --tau 0.8 --quiet"), 0);
    assert_int_equal(lp_file_read_all(lp_test_scratch_path("rec2/report.md"), &buf, &len), LP_OK);
    assert_non_null(strstr(buf, "- target: tau 0.8\n"));
    free(buf);
    assert_int_equal(run("prune --checkpoint run/best.ckpt --out rec3 --iss-threshold 0.5 --quiet"), 0);
    assert_int_equal(lp_file_read_all(lp_test_scratch_path("rec3/report.md"), &buf, &len), LP_OK);
    assert_non_null(strstr(buf, "- target: none (ISS: threshold 0.5)\n"));
    free(buf);
}

/* The line of group `name` in the table prune prints: "name  before  after ..." → after. */
static int units_after(const char *name) {
    char key[64];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(out_buf, key);
    if (!p) return -1;
    int before = -1, after = -1;
    if (sscanf(p + strlen(key), "%d %d", &before, &after) != 2) return -1;
    return after;
}

/* Issue 25 item 1: per-group rates and sizes (named or in group order), the rates of sensitivity's
 * suggested.txt, the sensitivity rule; specs that do not fit the model are usage errors that leave
 * nothing behind. The model: bilstm.fw 4, bilstm.bw 4, lstm2 8. */
static void test_per_group_rates(void **state) {
    (void)state;
    assert_int_equal(run("prune --checkpoint run/best.ckpt --out pg1 --rates bilstm.fw=0.5,lstm2=0.25 --quiet"), 0);
    assert_true(units_after("bilstm.fw") == 2 && units_after("bilstm.bw") == 4 && units_after("lstm2") == 6);
    char *buf;
    size_t len;
    assert_int_equal(lp_file_read_all(lp_test_scratch_path("pg1/report.md"), &buf, &len), LP_OK);
    assert_non_null(strstr(buf, "- target: per-group rates bilstm.fw=0.5,lstm2=0.25\n"));
    assert_non_null(strstr(buf, "Rule given,"));
    free(buf);
    assert_int_equal(run("prune --checkpoint run/best.ckpt --out pg2 --units 3,1,5 --quiet"), 0);
    assert_true(units_after("bilstm.fw") == 3 && units_after("bilstm.bw") == 1 && units_after("lstm2") == 5);
    assert_int_equal(run("prune --checkpoint run/best.ckpt --out pg3 --rates 0,0.75,0.5 --quiet"), 0);
    assert_true(units_after("bilstm.fw") == 4 && units_after("bilstm.bw") == 1 && units_after("lstm2") == 4);
    assert_int_equal(run("info pg3/pruned.ckpt"), 0);
    assert_non_null(strstr(out_buf, "lstm2          4 units"));

    /* Usage errors, before anything is written. */
    static const char *const bad[][2] = {
        {"--rates fw=0.3", "no unit group 'fw' (the groups: bilstm.fw, bilstm.bw, lstm2)"},
        {"--units 3,1", "2 values for 3 unit groups"},
        {"--units 3,1,9", "group lstm2: 9 units to keep"},
        {"--rates lstm2=1", "group lstm2: rate 1 is not in [0, 1)"},
        {"--rates lstm2=0.5,0.5", "mix of NAME=V and plain values"},
        {"--rates lstm2=0.5,lstm2=0.25", "group lstm2 given twice"},
        {"--rates lstm2=0.5 --target-rate 0.3", "replace --target-rate"},
        {"--rates lstm2=0.5 --rate-rule eigen", "does not go with --rate-rule eigen"},
        {"--rates lstm2=0.5 --units 3,1,5", "give one of --rates, --units and --rates-from"},
        {"--rate-rule given", "--rate-rule given needs --rates, --units or --rates-from"},
        {"--rates-from missing.txt", "missing.txt"},
        {"--rate-rule sensitivity", "--rate-rule sensitivity needs --target-rate"},
        {"--rate-rule sensitivity --target-rate 0.5 --sensitivity nowhere", "nowhere/curves.txt"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = run("prune --checkpoint run/best.ckpt --out pgbad %s --quiet", bad[i][0]);
        if (rc != 2 || !strstr(out_buf, bad[i][1])) fprintf(stderr, "%s: rc %d: %s\n", bad[i][0], rc, out_buf);
        assert_int_equal(rc, 2);
        assert_non_null(strstr(out_buf, bad[i][1]));
        assert_int_equal(access(lp_test_scratch_path("pgbad"), F_OK), -1);
    }

    /* ... and the rules the schedule cannot take */
    static const char *const bad_pipeline[][2] = {
        {"--schedule iss --units 3,1,5", "per-group rates and the given rule do not apply to it"},
        {"--schedule soft --rate-rule sensitivity --target-rate 0.3", "the soft schedule starts untrained"},
    };
    for (size_t i = 0; i < sizeof bad_pipeline / sizeof bad_pipeline[0]; i++) {
        int rc = run("pipeline --train 'data/train*.tfrecord' --classes 5 --hidden 8 --out pgbad %s --quiet", bad_pipeline[i][0]);
        assert_int_equal(rc, 2);
        assert_non_null(strstr(out_buf, bad_pipeline[i][1]));
        assert_int_equal(access(lp_test_scratch_path("pgbad"), F_OK), -1);
    }

    /* sensitivity → suggested.txt → --rates-from: the sizes suggested.txt's model.units line names. */
    assert_int_equal(run("sensitivity --checkpoint run/best.ckpt --out sens --rates 0.25,0.5,0.75 --max-drop 0.05 --quiet"), 0);
    assert_int_equal(lp_file_read_all(lp_test_scratch_path("sens/suggested.txt"), &buf, &len), LP_OK);
    int u[3];
    const char *line = strstr(buf, "model.units = ");
    assert_non_null(line);
    assert_int_equal(sscanf(line, "model.units = %d,%d,%d", &u[0], &u[1], &u[2]), 3);
    free(buf);
    assert_int_equal(run("prune --checkpoint run/best.ckpt --out pg4 --rates-from sens/suggested.txt --quiet"), 0);
    assert_true(units_after("bilstm.fw") == u[0] && units_after("bilstm.bw") == u[1] && units_after("lstm2") == u[2]);

    /* The sensitivity rule, from those curves and measured afresh: the same plan, near the target. */
    assert_int_equal(run("prune --checkpoint run/best.ckpt --out pg5 --rate-rule sensitivity --target-rate 0.5 "
                         "--sensitivity sens --quiet"), 0);
    int k5[3] = {units_after("bilstm.fw"), units_after("bilstm.bw"), units_after("lstm2")};
    const double mean = ((1 - k5[0] / 4.0) + (1 - k5[1] / 4.0) + (1 - k5[2] / 8.0)) / 3;
    assert_true(fabs(mean - 0.5) <= 0.5 * 0.25 / 3 + 1e-9); /* within half the largest one-unit step */
    assert_int_equal(lp_file_read_all(lp_test_scratch_path("pg5/report.md"), &buf, &len), LP_OK);
    assert_non_null(strstr(buf, "Rule sensitivity,"));
    assert_non_null(strstr(buf, "cost budget θ = "));
    free(buf);
    assert_int_equal(run("prune --checkpoint run/best.ckpt --out pg6 --rate-rule sensitivity --target-rate 0.5 "
                         "--quiet"), 0);
    assert_true(units_after("bilstm.fw") >= 1 && access(lp_test_scratch_path("pg6/sensitivity/curves.txt"), F_OK) == 0);
}

static void test_predict_eval_info_formats(void **state) {
    (void)state;
    assert_int_equal(run("predict --checkpoint run/best.ckpt --data 'data/test*.tfrecord' --out preds.csv --top 3 --quiet"), 0);
    char *buf;
    size_t len;
    assert_int_equal(lp_file_read_all(lp_test_scratch_path("preds.csv"), &buf, &len), LP_OK);
    assert_memory_equal(buf, "VideoId,LabelConfidencePairs\n", 29);
    /* every line: id, then exactly 3 "label score" pairs, scores descending */
    int lines = 0;
    for (char *line = strchr(buf, '\n') + 1; *line; lines++) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        char *comma = strchr(line, ',');
        assert_non_null(comma);
        int labels[3];
        double sc[3];
        assert_int_equal(sscanf(comma + 1, "%d %lf %d %lf %d %lf", &labels[0], &sc[0], &labels[1], &sc[1], &labels[2], &sc[2]), 6);
        assert_true(sc[0] >= sc[1] && sc[1] >= sc[2]);
        for (int k = 0; k < 3; k++) assert_true(labels[k] >= 0 && labels[k] < 5);
        line = nl + 1;
    }
    assert_true(lines > 5);
    free(buf);
    assert_int_equal(run("eval --checkpoint run/best.ckpt --data 'data/test*.tfrecord' --out m.txt"), 0);
    assert_non_null(strstr(out_buf, "GAP@20"));
    assert_int_equal(lp_file_read_all(lp_test_scratch_path("m.txt"), &buf, &len), LP_OK);
    assert_non_null(strstr(buf, "gap = "));
    assert_non_null(strstr(buf, "perr = "));
    free(buf);
    assert_int_equal(run("info run/best.ckpt"), 0);
    assert_non_null(strstr(out_buf, "bilstm.fw"));
    assert_non_null(strstr(out_buf, "per frame"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_unknown),
        cmocka_unit_test(test_cli_md_has_every_help),
        cmocka_unit_test(test_bad_flags_are_usage_errors),
        cmocka_unit_test(test_synth_inspect_bad_flags),
        cmocka_unit_test(test_directory_as_file),
        cmocka_unit_test(test_refused_runs),
        cmocka_unit_test(test_synth_inspect_flags_take_effect),
        cmocka_unit_test(test_runtime_errors_name_the_file),
        cmocka_unit_test(test_predict_eval_info_formats),
        cmocka_unit_test(test_lm_sensitivity_runs),
        cmocka_unit_test(test_lm_vocabulary_mismatch_refused),
        cmocka_unit_test(test_eval_without_labels_refused),
        cmocka_unit_test(test_mixed_levels_refused),
        cmocka_unit_test(test_round_to_larger_than_groups_warns),
        cmocka_unit_test(test_finetune_inherits_data),
        cmocka_unit_test(test_forgotten_classes_warns),
        cmocka_unit_test(test_flags_that_do_nothing_refused),
        cmocka_unit_test(test_prune_records_command_and_config),
        cmocka_unit_test(test_per_group_rates),
    };
    return cmocka_run_group_tests(tests, setup, lp_test_scratch_teardown);
}
