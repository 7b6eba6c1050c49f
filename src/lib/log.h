/* log.h - the one logger (after OpenBSD log.c).
 *
 * Only programs (main.c and their event loops) log; library code returns
 * -errno and lets the caller decide (docs/errors.md).  Output goes to stderr,
 * one line per message: "prog: [subsys] message".  Debug messages are
 * printed when the verbosity is >= 1 or when the subsystem's trace switch is
 * on (CAPTURE_TRACE=file,process,... or log_trace_enable()).
 */
#pragma once

#include <stdbool.h>

#include "macro.h"

enum log_subsys {
	LOG_MAIN = 0,
	LOG_PROTO,
	LOG_SCHED,
	LOG_STORE,
	LOG_SANDBOX,
	LOG_FILE,
	LOG_PROCESS,
	LOG_NETWORK,
	LOG_REGISTRY,
	LOG_VISITOR,
	LOG_SUBSYS_MAX,
};

void log_init(const char *progname, int verbosity);
int log_verbosity(void);
/* Enables the trace switches named in a comma-separated list; unknown names are ignored. */
void log_trace_enable(const char *list);
bool log_trace_on(enum log_subsys s);

void log_warn(const char *fmt, ...) _printf_(1, 2);  /* appends ": strerror(errno)" */
void log_warnx(const char *fmt, ...) _printf_(1, 2); /* no errno */
void log_info(const char *fmt, ...) _printf_(1, 2);
void log_debug(enum log_subsys s, const char *fmt, ...) _printf_(2, 3);
/* Logs "msg: strerror(-r)" and returns r, for "return log_error_errno(r, ...)". */
int log_error_errno(int r, const char *fmt, ...) _printf_(2, 3);
_noreturn_ void fatal(const char *fmt, ...) _printf_(1, 2);
_noreturn_ void fatalx(const char *fmt, ...) _printf_(1, 2);
