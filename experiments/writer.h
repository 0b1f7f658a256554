/* writer: the small file writers that the runner's outputs (report, sweep, sensitivity) share — CSV and
 * markdown tables, gnuplot scripts run where gnuplot is installed, and the two string helpers every
 * writer needs (a file in a directory, the next name of a tab-separated list).
 *
 * A file is written through core/fileio.h's atomic files: a reader, or a run killed half-way, sees the
 * old file or the whole new one. A table is written a cell at a time:
 *
 *     lp_writer w;
 *     LP_TRY(lp_writer_open(&w, dir, "models.csv", LP_WRITER_CSV));
 *     lp_writer_cells(&w, "label\tparameters");        (a header from a tab-separated list)
 *     lp_writer_row(&w);
 *     lp_writer_cellsf(&w, "%s\t%zu", label, params);
 *     lp_writer_row(&w);
 *     LP_TRY(lp_writer_commit(&w));
 *
 * LP_WRITER_MD writes the same calls as "| label | parameters |" rows; lp_writer_align() after the
 * header row writes the alignment row ("|---|---:|"). Prose around the tables, and gnuplot commands, go
 * to w.f directly (LP_WRITER_TEXT is a file with no tables). */
#ifndef LP_EXPERIMENTS_WRITER_H
#define LP_EXPERIMENTS_WRITER_H
#include <stddef.h>
#include <stdio.h>

#include "core/fileio.h"

typedef enum { LP_WRITER_TEXT, LP_WRITER_CSV, LP_WRITER_MD } lp_writer_kind;

typedef struct {
    FILE *f;             /* the file being written (free text goes here) */
    lp_writer_kind kind; /* how a cell is written */
    int col;             /* cells written in the current row */
    int width;           /* cells of the last row ended (the header, for lp_writer_align) */
    lp_atomic_file af;
} lp_writer;

/* Open dir/name for writing (atomically: nothing is visible before lp_writer_commit). */
lp_status lp_writer_open(lp_writer *w, const char *dir, const char *name, lp_writer_kind kind);
/* Flush, fsync and move the file into place; lp_writer_abort drops it instead. */
lp_status lp_writer_commit(lp_writer *w);
void lp_writer_abort(lp_writer *w);

/* One cell of the current row. CSV: separated by commas, quoted ("" for a quote) when the value holds a
 * comma, a quote or a newline. Markdown: "| v |", each further cell " v |". */
void lp_writer_cell(lp_writer *w, const char *v);
/* One cell per piece of a tab-separated list: n tabs, n + 1 cells ("a\t\tb": a, an empty cell, b). */
void lp_writer_cells(lp_writer *w, const char *tab_list);
/* The same for a formatted list: lp_writer_cellsf(&w, "%s\t%d", name, units) writes two cells (the
 * values must not hold tabs). */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void lp_writer_cellsf(lp_writer *w, const char *fmt, ...);
/* End the current row. */
void lp_writer_row(lp_writer *w);
/* Markdown: the alignment row under a header of w->width cells; align[i] is 'l' or 'r' for column i,
 * and the last letter holds for every column past the string's end ("lr": the first left, all others
 * right). */
void lp_writer_align(lp_writer *w, const char *align);

/* What a gnuplot run draws: the script dir/script (already committed) is run in dir. */
typedef struct {
    const char *dir;
    const char *script;
    const char *log;        /* gnuplot's messages go to dir/log (NULL: discarded) */
    const char *const *png; /* [n] the PNGs the script draws, names in dir */
    int n;
} lp_writer_plot;

/* Run the script where gnuplot is installed. have[i], in: 1 for a PNG the script draws; out: 1 only for
 * one that was written (each is removed before the run, so an old one never counts). Nothing runs when
 * nothing is to be drawn. Returns 1 when gnuplot ran and reported errors, else 0 (also when gnuplot is
 * missing: then the data and the script are the result, and every have[i] is 0). */
int lp_writer_gnuplot(const lp_writer_plot *p, int *have);

/* The next name of a tab-separated list into buf, advancing *list; 0 at the end. */
int lp_writer_next_name(const char **list, char *buf, size_t n);

#endif
