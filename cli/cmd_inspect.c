/* cmd_inspect: `lstmprune inspect FILE...` — lists every record of YouTube-8M-style TFRecord files (id,
 * labels, frame count), verifying both CRCs of every record and decoding every record, then prints a
 * summary. Exit 0 when everything is good, 1 when any record is bad or a file cannot be read, 2 on a
 * usage error. */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/status.h"
#include "data/yt8m.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: lstmprune inspect [options] FILE...\n\n"
            "Reads TFRecord files (plain or gzip) of YouTube-8M-style records: checks both CRCs of every\n"
            "record, decodes it, and prints per record its number, byte offset, id, frame count and labels,\n"
            "then a summary line (records, frames, bad records). Without --skip-bad the first bad record\n"
            "stops the run; with it, bad records are reported, counted and passed over. The exit status is\n"
            "1 if any record was bad or a file could not be read, 2 for a usage error, else 0.\n\n"
            "options:\n"
            "  --frame-features SPEC  frame feature lists, name:size,... (default %s)\n"
            "  --video-features SPEC  video-level features (default %s)\n"
            "  --id-key KEY           context key of the video id (default %s; AudioSet and 2017: video_id)\n"
            "  --labels-key KEY       context key of the labels (default %s)\n"
            "  --classes N            labels must lie in [0, N) (default %d; 2017: 4716, AudioSet: 527)\n"
            "  --level L              frame, video or auto (per record; default auto)\n"
            "  --skip-bad             report and count bad records, keep going (default off)\n"
            "  -q, --quiet            print only the summary line (errors still go to stderr)\n"
            "  -h, --help             this text\n",
            LP_YT8M_DEFAULT_FRAME_FEATURES, LP_YT8M_DEFAULT_VIDEO_FEATURES, LP_YT8M_DEFAULT_ID_KEY,
            LP_YT8M_DEFAULT_LABELS_KEY, LP_YT8M_DEFAULT_CLASSES);
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

int lp_cmd_inspect(int argc, char **argv) {
    enum { O_FRAME = 1000, O_VIDEO, O_ID, O_LABELS, O_CLASSES, O_LEVEL, O_SKIP };
    static const struct option opts[] = {
        {"frame-features", required_argument, 0, O_FRAME},
        {"video-features", required_argument, 0, O_VIDEO},
        {"id-key", required_argument, 0, O_ID},
        {"labels-key", required_argument, 0, O_LABELS},
        {"classes", required_argument, 0, O_CLASSES},
        {"level", required_argument, 0, O_LEVEL},
        {"skip-bad", no_argument, 0, O_SKIP},
        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    lp_yt8m_config cfg;
    lp_yt8m_config_default(&cfg);
    const char *frame_spec = NULL, *video_spec = NULL, *id_key = NULL, *labels_key = NULL;
    int quiet = 0, skip_bad = 0;
    optind = 1;
    opterr = 0;
    for (;;) {
        int ch = getopt_long(argc, argv, "qh", opts, NULL);
        if (ch == -1) break;
        switch (ch) {
        case O_FRAME: frame_spec = optarg; break;
        case O_VIDEO: video_spec = optarg; break;
        case O_ID: id_key = optarg; break;
        case O_LABELS: labels_key = optarg; break;
        case O_CLASSES: {
            char *end;
            errno = 0;
            long n = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || n < 1 || n > (1L << 24)) {
                lp_cli_error("inspect", "--classes must be an integer in [1, %ld], got '%s'", 1L << 24, optarg);
                return 2;
            }
            cfg.classes = (int)n;
            break;
        }
        case O_LEVEL:
            if (lp_yt8m_level_parse(&cfg.level, optarg) != LP_OK) {
                lp_cli_error("inspect", "--level: %s", lp_last_error());
                return 2;
            }
            break;
        case O_SKIP: skip_bad = 1; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default:
            if (optopt && optopt != '?') lp_cli_error("inspect", "option '%s' needs a value (see --help)", argv[optind - 1]);
            else lp_cli_error("inspect", "unknown option '%s' (see --help)", argv[optind - 1]);
            return 2;
        }
    }
    if (optind >= argc) {
        lp_cli_error("inspect", "no input files (see --help)");
        return 2;
    }
    if (lp_yt8m_config_set(&cfg, frame_spec, video_spec, id_key, labels_key) != LP_OK) {
        lp_cli_error("inspect", "%s", lp_last_error());
        return 2;
    }
    cfg.skip_bad = 0;  // bad records are reported here one by one, so the reader returns each of them

    lp_yt8m_video v;
    lp_yt8m_video_init(&v);
    lp_yt8m_reader *r = NULL;
    uint64_t records = 0, frames = 0, bad = 0, files = 0;
    int stop = 0;
    for (int i = optind; i < argc && !stop; i++) {
        lp_status s = r ? lp_yt8m_reader_reopen(r, argv[i]) : lp_yt8m_reader_open(&r, argv[i], &cfg);
        if (s != LP_OK) {
            lp_cli_error("inspect", "%s", lp_last_error());
            bad++;  // an unreadable file counts as a bad record: its contents are unknown
            if (s == LP_ERR_NOMEM || !skip_bad) stop = 1;
            continue;
        }
        files++;
        if (!quiet) printf("%s\n", argv[i]);
        uint64_t f_records = 0, f_frames = 0, f_bad = 0;
        for (;;) {
            s = lp_yt8m_reader_next(r, &v);
            if (s == LP_ERR_EOF) break;
            if (s == LP_OK) {
                f_records++;
                f_frames += (uint64_t)v.total_frames;
                if (!quiet) print_video(r, &v);
                continue;
            }
            lp_cli_error("inspect", "%s%s", lp_last_error(),
                         lp_yt8m_reader_failed(r) ? " (the rest of the file cannot be read)" : "");
            f_bad++;
            if (!skip_bad || s == LP_ERR_NOMEM) {
                stop = 1;
                break;
            }
            if (lp_yt8m_reader_failed(r)) break;
        }
        records += f_records;
        frames += f_frames;
        bad += f_bad;
        if (!quiet)
            printf("%s: %llu records, %llu frames, %llu bad\n", argv[i], (unsigned long long)f_records,
                   (unsigned long long)f_frames, (unsigned long long)f_bad);
    }
    printf("total: %llu files, %llu records, %llu frames, %llu bad records%s\n", (unsigned long long)files,
           (unsigned long long)records, (unsigned long long)frames, (unsigned long long)bad,
           stop && bad ? " (stopped at the first bad record; --skip-bad to go on)" : "");
    lp_yt8m_reader_close(r);
    lp_yt8m_video_free(&v);
    if (fflush(stdout) != 0) return 1;
    return bad ? 1 : 0;
}
