/* fuzz_config: libFuzzer target for the "key = value" text parser (core/kv.h) that reads config.txt,
 * checkpoint meta blocks and sweep configurations, and for what a sweep derives from the parsed config:
 * the task kind, the pipeline options and the grid of cells (experiments/sweep.h lp_sweep_cells). The
 * input is the text.
 *
 * A bug: a crash, leak or sanitizer report; text that parses but whose lp_kv_format does not parse back
 * to the same pairs in the same order; a cell without a NUL-terminated non-empty name. Refusals
 * (LP_ERR_FORMAT, LP_ERR_ARG) are fine. Run with `make fuzz`; seeds in tests/fuzz/config/ (copies
 * of experiments/<name>.conf; docs/FUZZING.md). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/kv.h"
#include "experiments/kinds.h"
#include "experiments/pipeline.h"
#include "experiments/sweep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lp_kv kv, back;
    lp_kv_init(&kv);
    lp_kv_init(&back);
    if (lp_kv_parse(&kv, (const char *)data, size, "fuzz") != LP_OK) goto out;
    size_t len;
    char *text = lp_kv_format(&kv, &len);
    if (!text) goto out;
    if (lp_kv_parse(&back, text, len, "formatted") != LP_OK || back.count != kv.count) abort();
    for (int i = 0; i < kv.count; i++)
        if (strcmp(kv.keys[i], back.keys[i]) || strcmp(kv.vals[i], back.vals[i])) abort();
    lp_free(text);
    lp_task_kind kind;
    (void)lp_task_kind_of(&kv, &kind);
    lp_pipeline_opts o;
    lp_pipeline_opts_default(&o);
    (void)lp_pipeline_opts_from_kv(&kv, &o);
    lp_sweep_cell *cells = NULL;
    int n = 0;
    if (lp_sweep_cells(&kv, &cells, &n) == LP_OK) {
        for (int i = 0; i < n; i++)
            if (!memchr(cells[i].name, '\0', sizeof cells[i].name) || !cells[i].name[0]) abort();
        lp_free(cells);
    }
out:
    lp_kv_free(&kv);
    lp_kv_free(&back);
    return 0;
}
