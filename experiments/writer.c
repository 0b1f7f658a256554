/* writer: see writer.h. */
#include "experiments/writer.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/rundir.h"

lp_status lp_writer_open(lp_writer *w, const char *dir, const char *name, lp_writer_kind kind) {
    char path[4096];
    memset(w, 0, sizeof *w);
    w->kind = kind;
    LP_TRY(lp_atomic_open(&w->af, lp_rundir_path(dir, name, path, sizeof path)));
    w->f = w->af.f;
    return LP_OK;
}

lp_status lp_writer_commit(lp_writer *w) {
    w->f = NULL;
    return lp_atomic_commit(&w->af);
}

void lp_writer_abort(lp_writer *w) {
    w->f = NULL;
    lp_atomic_abort(&w->af);
}

static void csv_field(FILE *f, const char *v) {
    if (!strpbrk(v, ",\"\n")) {
        fputs(v, f);
        return;
    }
    fputc('"', f);
    for (; *v; v++) {
        if (*v == '"') fputc('"', f);
        fputc(*v, f);
    }
    fputc('"', f);
}

void lp_writer_cell(lp_writer *w, const char *v) {
    if (w->kind == LP_WRITER_MD) {
        fprintf(w->f, "%s %s |", w->col ? "" : "|", v);
    } else {
        if (w->col) fputc(',', w->f);
        csv_field(w->f, v);
    }
    w->col++;
}

void lp_writer_cells(lp_writer *w, const char *tab_list) {
    char cell[1024];
    for (const char *p = tab_list;; p++) {
        size_t len = strcspn(p, "\t");
        snprintf(cell, sizeof cell, "%.*s", (int)len, p);
        lp_writer_cell(w, cell);
        p += len;
        if (!*p) return;
    }
}

void lp_writer_cellsf(lp_writer *w, const char *fmt, ...) {
    char list[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(list, sizeof list, fmt, ap);
    va_end(ap);
    lp_writer_cells(w, list);
}

void lp_writer_row(lp_writer *w) {
    fputc('\n', w->f);
    w->width = w->col;
    w->col = 0;
}

void lp_writer_align(lp_writer *w, const char *align) {
    size_t n = strlen(align);
    fputc('|', w->f);
    for (int i = 0; i < w->width && n; i++) fputs(align[(size_t)i < n ? (size_t)i : n - 1] == 'r' ? "---:|" : "---|", w->f);
    fputc('\n', w->f);
}

/* Where gnuplot runs and draws one PNG or more: remove those (an old file must not count as drawn),
 * run, keep have[i] only for the PNGs written. */
static int run_gnuplot(const lp_writer_plot *p, int *have) {
    char path[4096], cmd[9400];
    for (int i = 0; i < p->n; i++)
        if (have[i]) remove(lp_rundir_path(p->dir, p->png[i], path, sizeof path));
    snprintf(cmd, sizeof cmd, "cd '%.3000s' && gnuplot '%.1000s' >/dev/null 2>%s%.1000s", p->dir, p->script,
             p->log ? "" : "/dev/null", p->log ? p->log : "");
    int failed = system(cmd) != 0;
    for (int i = 0; i < p->n; i++) {
        struct stat st;
        if (have[i]) have[i] = stat(lp_rundir_path(p->dir, p->png[i], path, sizeof path), &st) == 0 && st.st_size > 0;
    }
    return failed;
}

int lp_writer_gnuplot(const lp_writer_plot *p, int *have) {
    int any = 0;
    for (int i = 0; i < p->n; i++) any |= have[i];
    if (any && system("command -v gnuplot >/dev/null 2>&1") == 0) return run_gnuplot(p, have);
    for (int i = 0; i < p->n; i++) have[i] = 0;
    return 0;
}

int lp_writer_next_name(const char **list, char *buf, size_t n) {
    const char *p = *list;
    if (!*p) return 0;
    size_t len = strcspn(p, "\t");
    snprintf(buf, n, "%.*s", (int)len, p);
    *list = p + len + (p[len] == '\t');
    return 1;
}
