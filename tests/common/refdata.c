/* refdata: see refdata.h. */
#include "tests/common/refdata.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *lp_ref_path(const char *rel) {
    static char buf[4096];
    const char *root = getenv("LP_SHARED");
    if (!root || !*root) root = "../shared";
    snprintf(buf, sizeof buf, "%s/%s", root, rel);
    return buf;
}

static void die(const char *msg, const char *arg) {
    fprintf(stderr, "refdata: %s: %s\n", msg, arg);
    exit(2);
}

lp_ref *lp_ref_load(const char *name) {
    char rel[512];
    snprintf(rel, sizeof rel, "reference/%s", name);
    const char *path = lp_ref_path(rel);
    FILE *f = fopen(path, "r");
    if (!f) die("cannot open reference file (is ../shared beside the clone?)", path);
    lp_ref *r = calloc(1, sizeof *r);
    char word[128];
    while (fscanf(f, "%127s", word) == 1) {
        if (word[0] == '#') { /* skip the rest of the comment line */
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n') {}
            continue;
        }
        if (strcmp(word, "tensor") != 0) die("expected 'tensor'", path);
        r->t = realloc(r->t, (size_t)(r->count + 1) * sizeof *r->t);
        lp_ref_tensor *t = &r->t[r->count++];
        memset(t, 0, sizeof *t);
        if (fscanf(f, "%63s %d", t->name, &t->ndim) != 2 || t->ndim < 0 || t->ndim > 4)
            die("bad tensor header", path);
        t->n = 1;
        for (int i = 0; i < t->ndim; i++) {
            if (fscanf(f, "%d", &t->dims[i]) != 1) die("bad dims", path);
            t->n *= (size_t)t->dims[i];
        }
        t->v = malloc((t->n ? t->n : 1) * sizeof(double));
        for (size_t i = 0; i < t->n; i++)
            if (fscanf(f, "%lf", &t->v[i]) != 1) die("truncated values", path);
    }
    fclose(f);
    return r;
}

const lp_ref_tensor *lp_ref_get(const lp_ref *r, const char *name) {
    for (int i = 0; i < r->count; i++)
        if (strcmp(r->t[i].name, name) == 0) return &r->t[i];
    die("no such tensor in reference", name);
    return NULL;
}

float *lp_ref_floats(const lp_ref_tensor *t) {
    float *f = malloc((t->n ? t->n : 1) * sizeof(float));
    for (size_t i = 0; i < t->n; i++) f[i] = (float)t->v[i];
    return f;
}

void lp_ref_free(lp_ref *r) {
    if (!r) return;
    for (int i = 0; i < r->count; i++) free(r->t[i].v);
    free(r->t);
    free(r);
}

double lp_ref_compare(const char *what, const float *got, const double *want, size_t n, double atol,
                      double rtol) {
    double worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]) / (atol + rtol * fabs(want[i]));
        if (!(e <= worst)) { /* also catches NaN */
            worst = isnan(e) ? INFINITY : e;
            wi = i;
        }
    }
    if (worst > 1.0)
        fprintf(stderr, "%s: mismatch at %zu: got %.9g want %.9g (error %.3g x tolerance)\n", what, wi,
                (double)got[wi], want[wi], worst);
    return worst;
}
