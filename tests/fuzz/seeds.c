/* seeds: writes the seed corpora of the fuzz harnesses (tests/fuzz_<name>.c) into tests/fuzz/<name>/ from
 * real valid inputs: the reference YouTube-8M files (LP_SHARED/reference), small checkpoints of every
 * model kind written by the library, short PTB-style texts. `make fuzz-seeds` runs it; the output is
 * committed, so this only runs when the seeds should change. (The config seeds are experiments/<name>.conf,
 * copied by the Makefile.) Every file starts with the harness's mode byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/alloc.h"
#include "core/ckpt.h"
#include "core/fileio.h"
#include "data/tfrecord.h"
#include "lm/lm.h"
#include "model/model.h"

static const char *out_dir;

static void die(const char *what) {
    fprintf(stderr, "fuzz seeds: %s: %s\n", what, lp_last_error());
    exit(1);
}

/* OUT/name/file = mode byte + data. */
static void put(const char *name, const char *file, int mode, const void *data, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, name, file);
    FILE *f = fopen(path, "wb");
    unsigned char m = (unsigned char)mode;
    if (!f || fwrite(&m, 1, 1, f) != 1 || fwrite(data, 1, n, f) != n || fclose(f)) {
        fprintf(stderr, "fuzz seeds: cannot write %s\n", path);
        exit(1);
    }
}

static void put_file(const char *name, const char *file, int mode, const char *src) {
    char *buf;
    size_t n;
    if (lp_file_read_all(src, &buf, &n) != LP_OK) die(src);
    put(name, file, mode, buf, n);
    lp_free(buf);
}

/* The first `max` records of a reference file as yt8m seeds (mode 0: default config, level auto). */
static void put_records(const char *src, const char *stem, int max) {
    lp_tfrecord_reader *r;
    if (lp_tfrecord_open(&r, src) != LP_OK) die(src);
    const uint8_t *rec;
    size_t len;
    for (int i = 0; i < max && lp_tfrecord_next(r, &rec, &len) == LP_OK; i++) {
        char file[64];
        snprintf(file, sizeof file, "%s%d", stem, i);
        put("yt8m", file, 0, rec, len);
        if (i == 0) put("tfrecord", stem, 1, rec, len); /* framed by the harness */
    }
    lp_tfrecord_close(r);
}

static void put_ckpt(const char *file, int mode, const lp_model *m, const lp_lm *lm) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/ckpt/%s.tmp", out_dir, file);
    lp_ckpt c;
    lp_ckpt_init(&c);
    if ((m ? lp_model_add_to_ckpt(m, &c) : lp_lm_add_to_ckpt(lm, &c)) != LP_OK || lp_ckpt_save(&c, tmp) != LP_OK)
        die(file);
    lp_ckpt_free(&c);
    put_file("ckpt", file, mode, tmp);
    remove(tmp);
}

static void model_seed(const char *file, int mode, lp_model_kind kind, const char *units) {
    lp_kv kv;
    lp_kv_init(&kv);
    lp_model m;
    if (lp_model_default_kv(&kv, kind, 6, 4, 1, 3, 2, 0) != LP_OK || (units && lp_kv_set(&kv, "model.units", units) != LP_OK) ||
        lp_model_init_kv(&m, &kv, 1) != LP_OK)
        die(file);
    put_ckpt(file, mode, &m, NULL);
    lp_model_free(&m);
    lp_kv_free(&kv);
}

static void lm_seed(const char *file, int mode, int tied) {
    lp_lm_config cfg;
    lp_lm_config_default(&cfg, 12, 2, 4);
    cfg.tied = tied;
    lp_lm lm;
    if (lp_lm_init(&lm, &cfg, 1) != LP_OK) die(file);
    put_ckpt(file, mode, NULL, &lm);
    lp_lm_free(&lm);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: seeds OUT_DIR REFERENCE_DIR (e.g. tests/fuzz ../shared/reference)\n");
        return 2;
    }
    out_dir = argv[1];
    char frame[4096], video[4096], trunc[4096], gz[4096];
    snprintf(frame, sizeof frame, "%s/yt8m_frame.tfrecord", argv[2]);
    snprintf(video, sizeof video, "%s/yt8m_video.tfrecord", argv[2]);
    snprintf(trunc, sizeof trunc, "%s/truncated.tfrecord", argv[2]);

    /* tfrecord: mode 0 = a whole file (plain, gzip, truncated), mode 1 = one record payload. */
    put_file("tfrecord", "frame.tfrecord", 0, frame);
    put_file("tfrecord", "video.tfrecord", 0, video);
    put_file("tfrecord", "truncated.tfrecord", 0, trunc);
    snprintf(gz, sizeof gz, "%s/tfrecord/video.gz.tmp", out_dir);
    char *buf;
    size_t n;
    if (lp_file_read_all(video, &buf, &n) != LP_OK) die(video);
    gzFile g = gzopen(gz, "wb9");
    if (!g || gzwrite(g, buf, (unsigned)n) != (int)n || gzclose(g) != Z_OK) die("gzip");
    lp_free(buf);
    put_file("tfrecord", "video.tfrecord.gz", 0, gz);
    remove(gz);
    put_records(frame, "frame", 3);
    put_records(video, "video", 2);

    /* ckpt: mode 0 = the file as is, mode 1 = CRCs rewritten by the harness. */
    model_seed("paper.ckpt", 0, LP_MODEL_PAPER, NULL);
    model_seed("paper_pruned.ckpt", 1, LP_MODEL_PAPER, "3,1,2");
    model_seed("lstm.ckpt", 1, LP_MODEL_LSTM, NULL);
    lm_seed("lm.ckpt", 1, 0);
    lm_seed("lm_tied.ckpt", 0, 1);

    /* ptb: mode byte = max_words selector (0 = all words). */
    static const char *texts[] = {
        " the cat sat on the mat \n the dog sat <unk> \n",
        "a b c\r\nb c\r\nc",
        "no it was n't black monday \n but while the new york stock exchange did n't fall apart \n",
        "\xc3\xa9t\xc3\xa9 \xe2\x82\xac \n\n\t x \n",
    };
    for (int i = 0; i < 4; i++) {
        char file[32];
        snprintf(file, sizeof file, "text%d", i);
        put("ptb", file, i % 2 ? 3 : 0, texts[i], strlen(texts[i]));
    }
    return 0;
}
