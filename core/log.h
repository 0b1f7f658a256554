/* log: how the library speaks to a person. Progress lines, notices and warnings go through one sink that
 * the program sets (liblinear's set_print_string_function is the model); without one the library is
 * silent. Only cli/ writes to the terminal: its sink prints to stderr, redraws progress lines in place on
 * a terminal and drops them elsewhere.
 *
 *     static void to_stderr(void *user, lp_log_level level, const char *msg) { fprintf(stderr, "%s\n", msg); }
 *     lp_log_set_sink(to_stderr, NULL);
 *     lp_log(LP_LOG_INFO, "epoch %d: valid loss %.4f", e, loss);
 *
 * The sink is process-wide state, set once by the program before it starts work (not thread-safe to
 * change while the library runs). */
#ifndef LP_CORE_LOG_H
#define LP_CORE_LOG_H

typedef enum {
    LP_LOG_PROGRESS = 0, /* a transient status line (training progress, ETA): the next one replaces it */
    LP_LOG_INFO,         /* what the library is doing: stages, per-epoch results */
    LP_LOG_WARN,         /* something the user should see even when asking for quiet */
    LP_LOG_FATAL         /* an internal check failed and the program aborts next: without a sink this one
                          * message goes to stderr, the only output the library makes by itself */
} lp_log_level;

/* msg has no trailing newline. */
typedef void (*lp_log_fn)(void *user, lp_log_level level, const char *msg);

/* Route every message to fn (NULL: silence). */
void lp_log_set_sink(lp_log_fn fn, void *user);

/* Format and hand one message to the sink (nothing happens without one). */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void lp_log(lp_log_level level, const char *fmt, ...);

#endif
