/* test_golden: outputs of the video and LM paths pinned before the one-spine refactor (issue 21).
 *
 * The refactor that unifies the video-classifier and the language-model training and pruning code must
 * leave every output unchanged. This program runs the built binary ($LP_BIN) through tiny but complete
 * jobs of both paths and compares every file they write with fixtures in tests/golden/:
 *
 *   data/            synth: 600 videos, 6 classes, 6..12 frames of rgb:24,audio:8
 *   sweep/           sweep, paper model H = 8, 2 epochs: oneshot eigen:gm and uniform:l2 at rates 0.25 and
 *                    0.5, each without and with mean compensation; iterative eigen:gm 0.5 (without and with);
 *                    soft uniform:gm 0.5; ISS
 *   sens/            sensitivity of the sweep's baseline
 *   pipe-iterative/  pipeline --schedule iterative (eigen rates, l1 criterion, 2 steps)
 *   pipe-soft/       pipeline --schedule soft (uniform rates, gm)
 *   ptb/             the LM corpus (tests/common/markov_corpus.h): an input, pinned so that a change of
 *                    the generator is reported as such and not as a change of every LM number
 *   lmrun/           lm-train, 2 x 16 units, 2 epochs, a mid-epoch last.ckpt every 100 windows
 *   lmprune/         lm-prune on lmrun/best.ckpt: eigen rates + gm at mean rate 0.5, 1 fine-tuning epoch
 *   lmiss/           lm-prune --iss-lambda (the ISS baseline), 1 ISS and 1 fine-tuning epoch
 *   lmsens/          lm-sensitivity on lmrun/best.ckpt
 *
 * For every run directory, tests/golden/<run>.manifest lists each file it holds: text files are stored
 * whole, normalised (below), as tests/golden/<run>/<path>; binary files (checkpoints, TFRecords, and the
 * corpus) by size and FNV-1a 64 digest of their bytes. A file added, removed or changed fails the test
 * with a message naming it and its first differing line. The PNGs and plots.log that gnuplot writes are
 * not compared (their bytes depend on gnuplot, cairo and the fonts); the .gp scripts that draw them are.
 *
 * Normalisation: fields carrying wall time, throughput or latency differ between two runs of the same
 * job (they measure the machine's load), so their values are replaced by "T" — by column name in CSV and
 * TSV headers, gnuplot data-block headers ("# col col ...") and markdown table headers, by key in JSON
 * and "key = value" files. timing_names[] below lists them and where they occur. Empty fields and the
 * placeholder "–" stay, so that where a value exists is still compared. Every other byte (losses,
 * gradient norms, learning rates, metrics, spectra, kept units, sizes, FLOPs, configurations) is
 * compared exactly.
 *
 * Reproducibility: OpenBLAS picks its GEMM kernels for the CPU and different kernels round differently,
 * so every command runs with OPENBLAS_CORETYPE=Haswell (as scripts/demo.sh does) and
 * OPENBLAS_NUM_THREADS=1 in its environment. The fixtures are outputs of those kernels; on a CPU without
 * AVX2 and FMA they cannot run, and the tests skip. Unpinned, this project's AVX-512 machine picks the
 * Cooperlake kernels and every training run differs from the sixth digit of a loss on. The program's own
 * arithmetic does not depend on the optimisation level: with the Makefile's flags (x86-64-v2, so no fused
 * multiply-add; -std=c11 keeps GCC from contracting) the -O3 build and `make asan`'s -O1 build write the
 * same bytes, and so does clang; a build that fuses multiply-adds (clang -march=native) does not. The
 * fixtures were made with Debian 12's OpenBLAS 0.3.21 and glibc 2.36; another OpenBLAS or libm may round
 * differently. gnuplot (`make deps`) must be installed: results.md and report.md list the plots only where
 * it ran.
 *
 * Regenerating the fixtures after an intended change of outputs, from the repository root:
 *     LP_GOLDEN_UPDATE=1 LP_BIN=$PWD/build/lstmprune build/tests/test_golden
 * then review `git diff tests/golden`. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "tests/common/markov_corpus.h"
#include "tests/common/scratch.h"

#define GOLDEN_DIR "tests/golden"
#define MAX_COLS 64
#define PATH_LEN 4096

/* Names of the fields that carry wall time, throughput or latency, in every format:
 *   latency_ms_b1, latency_ms_bn, seconds  sweep results.csv and cells/<cell>/result.txt (seconds: the
 *                                          cell's wall time); models.csv (the two latencies)
 *   latency_bn                             plots.gp data blocks (the x axis of gap_vs_latency.png)
 *   latency_ms_batch1, latency_ms_batchN   report.json of the video pipeline
 *   lat B=1 ms, lat B=N ms                 results.md
 *   latency B=1 (ms), latency B=N (ms)     report.md of the video pipeline
 *   examples_per_s, elapsed_s              train.tsv of the video trainer
 *   seconds                                valid.tsv of the video trainer (the evaluation's time)
 *   words_per_s, elapsed_s                 train.tsv of lm-train
 *   train_words_per_s, train_s, eval_s     valid.tsv of lm-train
 *   words_per_sec                          report.json of lm-prune
 *   words/s (test eval)                    report.md of lm-prune */
static const char *const timing_names[] = {
    "latency_ms_b1", "latency_ms_bn", "seconds", "latency_bn", "latency_ms_batch1", "latency_ms_batchN",
    "lat B=1 ms", "lat B=N ms", "latency B=1 (ms)", "latency B=N (ms)", "examples_per_s", "elapsed_s",
    "words_per_s", "train_words_per_s", "train_s", "eval_s", "words_per_sec", "words/s (test eval)",
};

/* ---- a growable string ---- */

typedef struct {
    char *s;
    size_t n, cap;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = 2 * (b->n + n + 1);
        b->s = realloc(b->s, b->cap);
        assert_non_null(b->s);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

/* snprintf that fails the test where the text does not fit (a cut path would name another file). */
static void format_into(char *dst, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, size, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < size);
}

/* The whole file, NUL-terminated (*len without the NUL); NULL if it cannot be read. */
static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    sbuf b = {0};
    char chunk[8192];
    size_t n;
    sb_putn(&b, "", 0);
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) sb_putn(&b, chunk, n);
    fclose(f);
    *len = b.n;
    return b.s;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

/* mkdir -p of the directory part of path. */
static void make_parents(const char *path) {
    char buf[PATH_LEN];
    format_into(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        mkdir(buf, 0755);
        *p = '/';
    }
}

/* FNV-1a, 64 bits: a digest of a binary output that needs no library code (a refactor may move the
 * library's CRC32C). */
static uint64_t fnv1a64(const char *data, size_t n) {
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)data[i];
        h *= 0x100000001b3u;
    }
    return h;
}

/* ---- normalisation of the timing fields ---- */

static int is_timing(const char *name, size_t n) {
    for (size_t i = 0; i < sizeof timing_names / sizeof timing_names[0]; i++)
        if (strlen(timing_names[i]) == n && memcmp(timing_names[i], name, n) == 0) return 1;
    return 0;
}

/* [*b, *e) without surrounding blanks. */
static void trim(const char **b, const char **e) {
    while (*b < *e && (**b == ' ' || **b == '\t')) (*b)++;
    while (*e > *b && ((*e)[-1] == ' ' || (*e)[-1] == '\t')) (*e)--;
}

/* timing[i] = 1 for the header fields (separated by sep) that name a timing column; the column count. */
static int parse_header(const char *line, size_t len, char sep, unsigned char *timing) {
    int n = 0;
    for (const char *p = line, *end = line + len; n < MAX_COLS; n++) {
        const char *f = memchr(p, sep, (size_t)(end - p));
        const char *fe = f ? f : end, *b = p;
        trim(&b, &fe);
        timing[n] = (unsigned char)is_timing(b, (size_t)(fe - b));
        if (!f) return n + 1;
        p = f + 1;
    }
    return n;
}

/* The line's fields (separated by sep) with the content of timing fields replaced by "T"; blanks around
 * a field, empty fields and the placeholder "–" stay. */
static void emit_fields(sbuf *out, const char *line, size_t len, char sep, const unsigned char *timing, int ncols) {
    const char *p = line, *end = line + len;
    for (int i = 0;; i++) {
        const char *f = memchr(p, sep, (size_t)(end - p));
        const char *fe = f ? f : end, *b = p, *e = fe;
        trim(&b, &e);
        int placeholder = (size_t)(e - b) == strlen("–") && !memcmp(b, "–", (size_t)(e - b));
        int keep = i >= ncols || !timing[i] || b == e || placeholder;
        if (keep) sb_putn(out, p, (size_t)(fe - p));
        else {
            sb_putn(out, p, (size_t)(b - p));
            sb_puts(out, "T");
            sb_putn(out, e, (size_t)(fe - e));
        }
        if (!f) return;
        sb_putn(out, &sep, 1);
        p = f + 1;
    }
}

/* What a format's line function remembers from one line to the next. */
typedef struct {
    char sep;
    int ncols, in_block;
    unsigned char timing[MAX_COLS];
} norm_state;
typedef void (*line_fn)(sbuf *out, const char *line, size_t len, norm_state *st);

/* Calls fn on every line of text (without its '\n'), then appends the '\n' the line had. */
static void each_line(sbuf *out, const char *text, line_fn fn, norm_state *st) {
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        fn(out, p, len, st);
        if (nl) sb_puts(out, "\n");
        p += len + (nl != NULL);
    }
}

/* CSV and TSV: the first line is the header. */
static void delimited_line(sbuf *out, const char *line, size_t len, norm_state *st) {
    if (!st->in_block) {
        st->ncols = parse_header(line, len, st->sep, st->timing);
        st->in_block = 1;
        sb_putn(out, line, len);
    } else emit_fields(out, line, len, st->sep, st->timing, st->ncols);
}

static int is_md_rule(const char *line, size_t len) {
    if (len == 0 || line[0] != '|') return 0;
    for (size_t i = 0; i < len; i++)
        if (!strchr("|-: ", line[i])) return 0;
    return 1;
}

/* Markdown: a table's first row is its header; the table ends at the first line not starting with '|'. */
static void markdown_line(sbuf *out, const char *line, size_t len, norm_state *st) {
    if (len == 0 || line[0] != '|') st->in_block = 0;
    if (len == 0 || line[0] != '|' || is_md_rule(line, len)) sb_putn(out, line, len);
    else if (!st->in_block) {
        st->ncols = parse_header(line, len, '|', st->timing);
        st->in_block = 1;
        sb_putn(out, line, len);
    } else emit_fields(out, line, len, '|', st->timing, st->ncols);
}

/* gnuplot: data blocks "$NAME << EOD" ... "EOD" with space-separated columns. A "# name name ..." line
 * in a block names its columns; a block without one has the layout of the block before it (plots.gp's
 * $ISS and $BASE share the cells' layout). */
static void gnuplot_line(sbuf *out, const char *line, size_t len, norm_state *st) {
    if (!st->in_block) {
        st->in_block = len > 8 && line[0] == '$' && !memcmp(line + len - 6, "<< EOD", 6);
        sb_putn(out, line, len);
    } else if (len == 3 && !memcmp(line, "EOD", 3)) {
        st->in_block = 0;
        sb_putn(out, line, len);
    } else if (len >= 2 && line[0] == '#' && line[1] == ' ') {
        st->ncols = parse_header(line + 2, len - 2, ' ', st->timing);
        sb_putn(out, line, len);
    } else emit_fields(out, line, len, ' ', st->timing, st->ncols);
}

/* "key = value" lines (result.txt, config.txt, sweep.conf, suggested.txt, synth.txt). */
static void keyvalue_line(sbuf *out, const char *line, size_t len, norm_state *st) {
    (void)st;
    const char *eq = strstr(line, " = ");
    if (eq && eq < line + len && is_timing(line, (size_t)(eq - line))) {
        sb_putn(out, line, (size_t)(eq - line));
        sb_puts(out, " = T");
    } else sb_putn(out, line, len);
}

/* JSON: the value after "key": for a timing key (a number: up to the next ',', '}', ']' or blank). */
static void normalise_json(sbuf *out, const char *text) {
    for (const char *p = text; *p;) {
        if (*p != '"') {
            sb_putn(out, p++, 1);
            continue;
        }
        const char *q = p + 1;
        while (*q && *q != '"') q += q[0] == '\\' && q[1] ? 2 : 1;
        if (!*q) {
            sb_puts(out, p); /* not JSON after all: the rest as it is */
            break;
        }
        size_t klen = (size_t)(q - p - 1);
        const char *v = q + 1;
        int key = *v == ':';
        while (key && (*v == ':' || *v == ' ')) v++;
        sb_putn(out, p, (size_t)(v - p));
        p = v;
        if (!key || !is_timing(q - klen, klen)) continue;
        size_t vlen = strcspn(p, ",}] \n");
        if (vlen > 0 && *p != '"' && *p != '{' && *p != '[') {
            p += vlen;
            sb_puts(out, "T");
        }
    }
}

static const char *extension(const char *path) {
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    return dot && (!slash || dot > slash) ? dot + 1 : "";
}

/* The text of file `rel` with its timing fields replaced (malloc'd). */
static char *normalise(const char *rel, const char *text) {
    const char *ext = extension(rel);
    sbuf out = {0};
    norm_state st = {0};
    sb_putn(&out, "", 0);
    if (!strcmp(ext, "json")) normalise_json(&out, text);
    else if (!strcmp(ext, "csv") || !strcmp(ext, "tsv")) {
        st.sep = ext[0] == 'c' ? ',' : '\t';
        each_line(&out, text, delimited_line, &st);
    } else if (!strcmp(ext, "md")) each_line(&out, text, markdown_line, &st);
    else if (!strcmp(ext, "gp")) each_line(&out, text, gnuplot_line, &st);
    else each_line(&out, text, keyvalue_line, &st);
    return out.s;
}

/* ---- the files of a run directory ---- */

typedef struct {
    char **v;
    int n;
} strlist;

static void list_add(strlist *l, const char *s) {
    l->v = realloc(l->v, (size_t)(l->n + 1) * sizeof *l->v);
    assert_non_null(l->v);
    l->v[l->n] = strdup(s);
    assert_non_null(l->v[l->n++]);
}

static void list_free(strlist *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
}

/* Every regular file under root/rel, as paths relative to root, sorted (byte order, scandir's alphasort
 * in the C locale). */
static void walk(const char *root, const char *rel, strlist *out) {
    char dir[PATH_LEN];
    format_into(dir, sizeof dir, "%s%s%s", root, *rel ? "/" : "", rel);
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    assert_true(n >= 0);
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        char sub[PATH_LEN], full[PATH_LEN];
        format_into(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", name);
        format_into(full, sizeof full, "%s/%s", root, sub);
        struct stat st;
        if (strcmp(name, ".") && strcmp(name, "..") && stat(full, &st) == 0) {
            if (S_ISDIR(st.st_mode)) walk(root, sub, out);
            else if (S_ISREG(st.st_mode)) list_add(out, sub);
        }
        free(names[i]);
    }
    free(names);
}

typedef enum { KIND_TEXT, KIND_DIGEST, KIND_SKIP } file_kind;

static file_kind classify(const char *rel, int digest_only) {
    const char *ext = extension(rel);
    if (!strcmp(ext, "png") || !strcmp(ext, "log")) return KIND_SKIP; /* gnuplot's output */
    if (digest_only || !strcmp(ext, "ckpt") || !strcmp(ext, "tfrecord")) return KIND_DIGEST;
    return KIND_TEXT;
}

/* ---- comparison with the fixtures ---- */

static int updating(void) {
    const char *u = getenv("LP_GOLDEN_UPDATE");
    return u && *u && strcmp(u, "0") != 0;
}

static void print_line(const char *label, const char *s) {
    if (*s) fprintf(stderr, "  %s %.*s\n", label, (int)strcspn(s, "\n"), s);
    else fprintf(stderr, "  %s <end of file>\n", label);
}

/* 0 if equal; else 1, with the first differing line on stderr. */
static int compare_text(const char *what, const char *fixture, const char *want, const char *got) {
    if (!strcmp(want, got)) return 0;
    int line = 1;
    const char *w = want, *g = got;
    for (; *w && *w == *g; w++, g++) line += *w == '\n';
    while (w > want && w[-1] != '\n') w--, g--; /* back to the line's start (the same in both) */
    fprintf(stderr, "golden: %s differs from %s at line %d:\n", what, fixture, line);
    print_line("expected:", w);
    print_line("actual:  ", g);
    return 1;
}

/* The manifest line of one output file; for a text file, *text gets its normalised content. */
static void manifest_line(sbuf *m, const char *dir, const char *rel, int digest_only, char **text) {
    char path[PATH_LEN];
    format_into(path, sizeof path, "%s/%s", dir, rel);
    size_t len;
    char *raw = read_file(path, &len);
    assert_non_null(raw);
    sb_puts(m, rel);
    if (classify(rel, digest_only) == KIND_DIGEST) {
        char digest[96];
        unsigned long long h = fnv1a64(raw, len);
        format_into(digest, sizeof digest, "  %zu bytes  fnv1a64 %016llx\n", len, h);
        sb_puts(m, digest);
        *text = NULL;
    } else {
        sb_puts(m, "  text\n");
        *text = normalise(rel, raw);
    }
    free(raw);
}

/* Compare (or, updating, write) one text output against tests/golden/<run>/<rel>; 0 or 1 failure. */
static int check_text(const char *run, const char *rel, const char *text) {
    char fix[PATH_LEN], what[PATH_LEN];
    format_into(fix, sizeof fix, GOLDEN_DIR "/%s/%s", run, rel);
    format_into(what, sizeof what, "%s/%s", run, rel);
    if (updating()) {
        make_parents(fix);
        write_file(fix, text);
        return 0;
    }
    size_t len;
    char *want = read_file(fix, &len);
    if (!want) {
        fprintf(stderr, "golden: %s has no fixture %s (a new output?)\n", what, fix);
        return 1;
    }
    int bad = compare_text(what, fix, want, text);
    free(want);
    return bad;
}

/* The manifest against tests/golden/<run>.manifest (or write it); 0 or 1 failure. */
static int check_manifest(const char *run, const char *manifest) {
    char fix[PATH_LEN], what[PATH_LEN];
    format_into(fix, sizeof fix, GOLDEN_DIR "/%s.manifest", run);
    format_into(what, sizeof what, "the file list of %s (names; size and FNV-1a 64 of the binary files)", run);
    if (updating()) {
        make_parents(fix);
        write_file(fix, manifest);
        return 0;
    }
    size_t len;
    char *want = read_file(fix, &len);
    if (!want) {
        fprintf(stderr, "golden: no fixture %s (run from the repository root)\n", fix);
        return 1;
    }
    int bad = compare_text(what, fix, want, manifest);
    free(want);
    return bad;
}

/* The files of the run directory `dir` against their fixtures (or written as the fixtures), and their
 * manifest into *manifest; the number of files that differ. */
static int check_files(const char *run, const char *dir, const strlist *files, int digest_only, sbuf *manifest) {
    int failures = 0;
    for (int i = 0; i < files->n; i++) {
        if (classify(files->v[i], digest_only) == KIND_SKIP) continue;
        char *text;
        manifest_line(manifest, dir, files->v[i], digest_only, &text);
        if (text) failures += check_text(run, files->v[i], text);
        free(text);
    }
    return failures;
}

/* Every file of the run directory <scratch>/<run> against its fixture; digest_only: no file is stored
 * whole (an input too large to keep). Fails the test after reporting every differing file. */
static void check_run(const char *run, int digest_only) {
    char dir[PATH_LEN], rm[PATH_LEN];
    format_into(dir, sizeof dir, "%s", lp_test_scratch_path(run));
    format_into(rm, sizeof rm, "rm -rf '" GOLDEN_DIR "/%s'", run);
    if (updating()) assert_int_equal(system(rm), 0);
    strlist files = {0};
    walk(dir, "", &files);
    assert_true(files.n > 0);
    sbuf manifest = {0};
    sb_putn(&manifest, "", 0);
    int failures = check_files(run, dir, &files, digest_only, &manifest);
    failures += check_manifest(run, manifest.s);
    if (updating()) fprintf(stderr, "golden: wrote the fixtures of %s\n", run);
    free(manifest.s);
    list_free(&files);
    if (failures)
        fail_msg("%d file(s) of %s differ from " GOLDEN_DIR " (LP_GOLDEN_UPDATE=1 rewrites the fixtures)", failures,
                 run);
}

/* ---- running the binary ---- */

static char out_buf[1 << 16];

/* Run "$LP_BIN args" in the scratch directory, with the pinned kernels; stdout+stderr in out_buf.
 * Fails the test (showing the command and its output) unless it exits 0. */
static void run_ok(const char *fmt, ...) {
    char args[1024];
    va_list ap;
    va_start(ap, fmt);
    int n_args = vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    assert_true(n_args >= 0 && (size_t)n_args < sizeof args);
    int rc = lp_test_run(out_buf, sizeof out_buf, "OPENBLAS_CORETYPE=Haswell OPENBLAS_NUM_THREADS=1", "%s", args);
    if (rc != 0) fprintf(stderr, "golden: `lstmprune %s` exited %d:\n%s\n", args, rc, out_buf);
    assert_int_equal(rc, 0);
}


/* Every test starts here: without AVX2 and FMA, the fixtures' kernels cannot run. */
static void require_kernels(void) {
    if (lp_test_cpu_has("avx2") && lp_test_cpu_has("fma")) return;
    fprintf(stderr, "golden: skipped: the fixtures are of OpenBLAS's Haswell kernels, which need avx2 and fma\n");
    skip();
}

/* A prerequisite run directory's file (an earlier test made it). */
static void require_file(const char *name) {
    struct stat st;
    if (stat(lp_test_scratch_path(name), &st) != 0) fail_msg("golden: %s is missing (its test failed)", name);
}

/* ---- the jobs ---- */

/* The sweep's configuration (an input of the test, not an output). */
static const char sweep_conf[] =
    "data.train = data/train*.tfrecord\n"
    "data.valid = data/validate*.tfrecord\n"
    "data.test = data/test*.tfrecord\n"
    "data.classes = 6\n"
    "data.frame_features = rgb:24,audio:8\n"
    "data.shuffle_buffer = 32\n"
    "model.arch = paper\n"
    "model.hidden = 8\n"
    "train.epochs = 2\n"
    "train.batch = 16\n"
    "train.lr = 0.03\n"
    "train.seed = 3\n"
    "prune.finetune_epochs = 1\n"
    "prune.stats_batches = 4\n"
    "prune.prune_every = 4\n"
    "prune.iss_lambda = 5\n"
    "prune.iss_threshold = 0.05\n"
    "prune.latency_batch = 4\n"
    "prune.latency_frames = 8\n"
    "prune.latency_reps = 1\n"
    "grid.schedule = oneshot,iterative,soft\n"
    "grid.methods = eigen:gm,uniform:l2\n"
    "grid.rate = 0.25,0.5\n"
    "grid.compensate = none,mean\n"
    "grid.iterative.methods = eigen:gm\n"
    "grid.iterative.rate = 0.5\n"
    "grid.soft.methods = uniform:gm\n"
    "grid.soft.rate = 0.5\n"
    "grid.iss = 1\n"
    "sweep.out = sweep\n";

/* The pipeline runs' data and training options (the sweep's baseline set-up, another seed). */
#define PIPELINE_COMMON                                                                                        \
    "--train 'data/train*.tfrecord' --valid 'data/validate*.tfrecord' --test 'data/test*.tfrecord' --classes 6 " \
    "--frame-features rgb:24,audio:8 --shuffle-buffer 32 --model paper --hidden 8 --batch 16 --epochs 2 "      \
    "--lr 0.03 --seed 5 --stats-batches 4 --finetune-epochs 1 --latency-batch 4 --latency-frames 8 "           \
    "--latency-reps 1 --quiet"

/* The LM evaluations' streams and window (small: the corpus is small). */
#define LM_EVAL "--eval-batch 4 --eval-bptt 10 --quiet"

static void test_synth_and_sweep(void **state) {
    (void)state;
    require_kernels();
    run_ok("synth --out data --videos 600 --classes 6 --frames-min 6 --frames-max 12 --labels-max 2 "
           "--frame-features rgb:24,audio:8 --video-features mean_rgb:24,mean_audio:8 --seed 21 --quiet");
    check_run("data", 0);
    write_file(lp_test_scratch_path("sweep.conf"), sweep_conf);
    run_ok("sweep sweep.conf --quiet");
    check_run("sweep", 0);
}

static void test_sensitivity(void **state) {
    (void)state;
    require_kernels();
    require_file("sweep/baseline/best.ckpt");
    run_ok("sensitivity --checkpoint sweep/baseline/best.ckpt --out sens --rates 0.25,0.5,0.75 --max-drop 0.02 "
           "--quiet");
    check_run("sens", 0);
}

static void test_pipelines(void **state) {
    (void)state;
    require_kernels();
    require_file("data/synth.txt");
    run_ok("pipeline " PIPELINE_COMMON " --schedule iterative --steps 2 --rate-rule eigen --criterion l1 "
           "--target-rate 0.5 --out pipe-iterative");
    check_run("pipe-iterative", 0);
    run_ok("pipeline " PIPELINE_COMMON " --schedule soft --rate-rule uniform --criterion gm --target-rate 0.4 "
           "--prune-every 4 --out pipe-soft");
    check_run("pipe-soft", 0);
}

static void test_lm_train(void **state) {
    (void)state;
    require_kernels();
    check_run("ptb", 1);
    run_ok("lm-train --data ptb --units 16 --dropout 0.1 --epochs 2 --batch 4 --bptt 10 --lr 1 --momentum 0.5 "
           "--decay-after 1 --log-every 50 --save-every 100 --seed 7 --out lmrun " LM_EVAL);
    check_run("lmrun", 0);
}

static void test_lm_prune(void **state) {
    (void)state;
    require_kernels();
    require_file("lmrun/best.ckpt");
    run_ok("lm-prune --checkpoint lmrun/best.ckpt --out lmprune --target-rate 0.5 --stats-windows 50 "
           "--stats-batch 4 --stats-bptt 10 --finetune-epochs 1 --finetune-lr 0.5 " LM_EVAL);
    check_run("lmprune", 0);
    run_ok("lm-prune --checkpoint lmrun/best.ckpt --out lmiss --iss-lambda 0.15 --iss-threshold 0.05 "
           "--iss-epochs 1 --iss-lr 0.5 --finetune-epochs 1 --finetune-lr 0.5 " LM_EVAL);
    check_run("lmiss", 0);
}

static void test_lm_sensitivity(void **state) {
    (void)state;
    require_kernels();
    require_file("lmrun/best.ckpt");
    run_ok("lm-sensitivity --checkpoint lmrun/best.ckpt --out lmsens --rates 0.25,0.5,0.75 --max-rise 0.25 " LM_EVAL);
    check_run("lmsens", 0);
}

/* The scratch directory with the LM corpus; the binary and gnuplot must exist. */
static int setup(void **state) {
    (void)state;
    if (!getenv("LP_BIN") || access(lp_test_bin(), X_OK) != 0) {
        fprintf(stderr, "golden: LP_BIN (the Makefile sets it) must name the lstmprune binary\n");
        return -1;
    }
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        fprintf(stderr, "golden: gnuplot is missing (make deps): results.md and report.md list plots only where "
                        "it runs\n");
        return -1;
    }
    if (lp_test_scratch_make("golden") != 0) return -1;
    char ptb[PATH_LEN];
    format_into(ptb, sizeof ptb, "%s/ptb", lp_test_scratch_dir());
    if (mkdir(ptb, 0755) != 0) return -1;
    lp_test_markov_write_ptb(ptb, 1600, 1);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synth_and_sweep), cmocka_unit_test(test_sensitivity),
        cmocka_unit_test(test_pipelines),       cmocka_unit_test(test_lm_train),
        cmocka_unit_test(test_lm_prune),        cmocka_unit_test(test_lm_sensitivity),
    };
    return cmocka_run_group_tests(tests, setup, lp_test_scratch_teardown);
}
