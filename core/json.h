/* json: the two pieces every JSON writer here needs (experiments/report.c): a string with
 * quotes, backslashes and control characters escaped, and a number that is null when not finite. */
#ifndef LP_CORE_JSON_H
#define LP_CORE_JSON_H

#include <stdio.h>

/* "s" with '"' and '\' backslash-escaped and bytes below 0x20 as \u00XX. */
void lp_json_str(FILE *f, const char *s);

/* v with `digits` significant digits (%.*g) when finite, null otherwise (JSON has no NaN or Inf). */
void lp_json_num(FILE *f, double v, int digits);

#endif
