/* cmd_inspect: `lstmprune inspect FILE...` — lists every record of YouTube-8M-style TFRecord files (id,
 * labels, frame count), verifying both CRCs of every record and decoding every record, then prints a
 * summary. Exit 0 when everything is good, 1 when any record is bad or a file cannot be read, 2 on a
 * usage error. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/status.h"
#include "data/yt8m.h"

/* Keys are the flag names, so that a value checked after parsing is reported under its flag. */
static const lp_arg args[] = {
    {"frame-features", "frame-features", LP_ARG_STR, 0, "SPEC", "frame feature lists, name:size,...", NULL},
    {"video-features", "video-features", LP_ARG_STR, 0, "SPEC", "video-level features, name:size,...", NULL},
    {"id-key", "id-key", LP_ARG_STR, 0, "KEY", "context key of the video id (AudioSet and 2017: video_id)", NULL},
    {"labels-key", "labels-key", LP_ARG_STR, 0, "KEY", "context key of the labels", NULL},
    {"classes", "classes", LP_ARG_INT, 1, "N", "labels must lie in [0, N) (2017: 4716, AudioSet: 527)", NULL},
    {"level", "level", LP_ARG_STR, 0, "L", "frame, video or auto (decided per record)", NULL},
    {"max-record-mb", "max-record-mb", LP_ARG_INT, 1, "MB", "longer records are refused (limits what one record can allocate)", NULL},
    {"skip-bad", NULL, LP_ARG_FLAG, 0, NULL, "report and count bad records, keep going", NULL},
    {"quiet", NULL, LP_ARG_FLAG, 0, NULL, "print only the summary line (errors still go to stderr)", NULL},
};

#define MAX_CLASSES LP_YT8M_MAX_CLASSES /* the table checks >= 1 */
#define MAX_RECORD_MB ((int)(LP_YT8M_MAX_RECORD_LIMIT >> 20))

static void usage(void) {
    lp_yt8m_config c;
    lp_yt8m_config_default(&c);
    char spec[1024];
    lp_kv d;
    lp_kv_init(&d);
    lp_yt8m_features_format(&c.frame, spec, sizeof spec);
    lp_kv_set(&d, "frame-features", spec);
    lp_yt8m_features_format(&c.video, spec, sizeof spec);
    lp_kv_set(&d, "video-features", spec);
    lp_kv_set(&d, "id-key", c.id_key);
    lp_kv_set(&d, "labels-key", c.labels_key);
    lp_kv_set_int(&d, "classes", c.classes);
    lp_kv_set(&d, "level", lp_yt8m_level_str(c.level));
    lp_kv_set_int(&d, "max-record-mb", (long long)(c.max_record_bytes >> 20));
    printf("usage: lstmprune inspect [options] FILE...\n\n"
           "Reads TFRecord files (plain or gzip) of YouTube-8M-style records: checks both CRCs of every\n"
           "record, decodes it, and prints per record its number, byte offset, id, frame count and labels,\n"
           "then a summary line (records, frames, bad records). Without --skip-bad the first bad record\n"
           "stops the run; with it, bad records are reported, counted and passed over. The exit status is\n"
           "1 if any record was bad or a file could not be read, 2 for a usage error, else 0.\n\n");
    lp_args_help(stdout, args, (int)(sizeof args / sizeof args[0]), &d);
    lp_kv_free(&d);
}

/* The flags given, onto the reader's configuration; 2 with a message naming the flag when one is bad. */
static int take_flags(const lp_kv *kv, lp_yt8m_config *cfg) {
    const char *classes = lp_kv_get(kv, "classes"), *level = lp_kv_get(kv, "level");
    const char *frame = lp_kv_get(kv, "frame-features"), *video = lp_kv_get(kv, "video-features");
    if (classes && strtoll(classes, NULL, 10) > MAX_CLASSES) {
        lp_cli_error("inspect", "--classes: '%s' is not an integer <= %d", classes, MAX_CLASSES);
        return 2;
    }
    if (classes) cfg->classes = (int)strtoll(classes, NULL, 10);
    const char *mb = lp_kv_get(kv, "max-record-mb");
    if (mb && strtoll(mb, NULL, 10) > MAX_RECORD_MB) {
        lp_cli_error("inspect", "--max-record-mb: '%s' is not an integer <= %d", mb, MAX_RECORD_MB);
        return 2;
    }
    if (mb) cfg->max_record_bytes = (size_t)strtoll(mb, NULL, 10) << 20;
    if (level && lp_yt8m_level_parse(&cfg->level, level) != LP_OK) {
        lp_cli_error("inspect", "--level: %s", lp_last_error());
        return 2;
    }
    lp_yt8m_features f;
    if (frame && lp_yt8m_features_parse(&f, frame) != LP_OK) {
        lp_cli_error("inspect", "--frame-features: %s", lp_last_error());
        return 2;
    }
    if (video && lp_yt8m_features_parse(&f, video) != LP_OK) {
        lp_cli_error("inspect", "--video-features: %s", lp_last_error());
        return 2;
    }
    if (lp_yt8m_config_set(cfg, frame, video, lp_kv_get(kv, "id-key"), lp_kv_get(kv, "labels-key")) != LP_OK) {
        lp_cli_error("inspect", "%s", lp_last_error());
        return 2;
    }
    return 0;
}

typedef struct {
    int quiet, skip_bad;
} inspect_flags;

static int handle(void *user, const char *name, const char *value) {
    (void)value;
    inspect_flags *f = user;
    if (!strcmp(name, "quiet")) f->quiet = 1;
    else if (!strcmp(name, "skip-bad")) f->skip_bad = 1;
    return 0;
}

static void print_video(const lp_yt8m_reader *r, const lp_yt8m_video *v) {
    printf("  record %llu @%llu  id %s  ", (unsigned long long)lp_yt8m_reader_record_number(r),
           (unsigned long long)lp_yt8m_reader_record_offset(r), v->id);
    if (v->level == LP_YT8M_LEVEL_FRAME) printf("frames %d x %d", v->total_frames, v->dim);
    else printf("video-level %d values", v->dim);
    printf("  labels [");
    for (int i = 0; i < v->n_labels; i++) printf(i ? " %d" : "%d", v->labels[i]);
    printf("]\n");
}

typedef struct {
    uint64_t records, frames, bad;
} counts;

/* Every record of the open file: per-record lines unless quiet, bad records reported to stderr. Returns 1
 * when the run must stop (a bad record without --skip-bad, or out of memory). */
static int scan_file(lp_yt8m_reader *r, lp_yt8m_video *v, const inspect_flags *f, counts *c) {
    for (;;) {
        lp_status s = lp_yt8m_reader_next(r, v);
        if (s == LP_ERR_EOF) return 0;
        if (s == LP_OK) {
            c->records++;
            c->frames += (uint64_t)v->total_frames;
            if (!f->quiet) print_video(r, v);
            continue;
        }
        lp_cli_error("inspect", "%s%s", lp_last_error(),
                     lp_yt8m_reader_failed(r) ? " (the rest of the file cannot be read)" : "");
        c->bad++;
        if (!f->skip_bad || s == LP_ERR_NOMEM) return 1;
        if (lp_yt8m_reader_failed(r)) return 0;
    }
}

static int run(const inspect_flags *f, const lp_yt8m_config *cfg, char **files, int n_files) {
    lp_yt8m_video v;
    lp_yt8m_video_init(&v);
    lp_yt8m_reader *r = NULL;
    counts total = {0};
    uint64_t opened = 0;
    int stop = 0;
    for (int i = 0; i < n_files && !stop; i++) {
        lp_status s = r ? lp_yt8m_reader_reopen(r, files[i]) : lp_yt8m_reader_open(&r, files[i], cfg);
        if (s != LP_OK) {
            lp_cli_error("inspect", "%s", lp_last_error());
            total.bad++;  // an unreadable file counts as a bad record: its contents are unknown
            if (s == LP_ERR_NOMEM || !f->skip_bad) stop = 1;
            continue;
        }
        opened++;
        if (!f->quiet) printf("%s\n", files[i]);
        counts one = {0};
        stop = scan_file(r, &v, f, &one);
        total.records += one.records;
        total.frames += one.frames;
        total.bad += one.bad;
        if (!f->quiet)
            printf("%s: %llu records, %llu frames, %llu bad\n", files[i], (unsigned long long)one.records,
                   (unsigned long long)one.frames, (unsigned long long)one.bad);
    }
    printf("total: %llu files, %llu records, %llu frames, %llu bad records%s\n", (unsigned long long)opened,
           (unsigned long long)total.records, (unsigned long long)total.frames, (unsigned long long)total.bad,
           stop && total.bad ? " (stopped at the first bad record; --skip-bad to go on)" : "");
    lp_yt8m_reader_close(r);
    lp_yt8m_video_free(&v);
    if (fflush(stdout) != 0) return 1;
    return total.bad ? 1 : 0;
}

int lp_cmd_inspect(int argc, char **argv) {
    lp_kv kv;
    lp_kv_init(&kv);
    inspect_flags f = {0};
    char **files = NULL;
    int n_files = 0;
    lp_yt8m_config cfg;
    lp_yt8m_config_default(&cfg);
    int rc = lp_args_parse("inspect", argc, argv, args, (int)(sizeof args / sizeof args[0]), &kv, handle, &f, &files,
                           &n_files);
    if (rc == 1) {
        usage();
        rc = 0;
    } else if (rc == 0 && n_files == 0) {
        lp_cli_error("inspect", "no input files (see --help)");
        rc = 2;
    } else if (rc == 0 && (rc = take_flags(&kv, &cfg)) == 0) {
        cfg.skip_bad = 0;  // bad records are reported here one by one, so the reader returns each of them
        rc = run(&f, &cfg, files, n_files);
    }
    lp_kv_free(&kv);
    return rc;
}
