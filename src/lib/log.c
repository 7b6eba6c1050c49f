/* log.c - see log.h. */
#include "log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

static const char *const subsys_names[LOG_SUBSYS_MAX] = {
	[LOG_MAIN] = "main",	   [LOG_PROTO] = "proto",     [LOG_SCHED] = "sched",
	[LOG_STORE] = "store",	   [LOG_SANDBOX] = "sandbox", [LOG_FILE] = "file",
	[LOG_PROCESS] = "process", [LOG_NETWORK] = "network", [LOG_REGISTRY] = "registry",
	[LOG_VISITOR] = "visitor",
};

/* Process-wide logger state, set once by main(). */
static const char *log_prog = "capture";
static int log_verb;
static bool log_traces[LOG_SUBSYS_MAX];

void log_init(const char *progname, int verbosity)
{
	const char *env = getenv("CAPTURE_TRACE");

	log_prog = progname;
	log_verb = verbosity;
	if (env)
		log_trace_enable(env);
}

int log_verbosity(void)
{
	return log_verb;
}

void log_trace_enable(const char *list)
{
	const char *p = list;

	while (p && *p) {
		size_t n = strcspn(p, ",");
		for (int i = 0; i < LOG_SUBSYS_MAX; i++)
			if (strlen(subsys_names[i]) == n && strncmp(p, subsys_names[i], n) == 0)
				log_traces[i] = true;
		if (n == 3 && strncmp(p, "all", 3) == 0)
			for (int i = 0; i < LOG_SUBSYS_MAX; i++)
				log_traces[i] = true;
		p += n;
		if (*p == ',')
			p++;
	}
}

bool log_trace_on(enum log_subsys s)
{
	return log_verb >= 1 || (s < LOG_SUBSYS_MAX && log_traces[s]);
}

__attribute__((format(printf, 3, 0))) static void vlog(const char *tag, int err, const char *fmt, va_list ap)
{
	char msg[2048];

	vsnprintf(msg, sizeof msg, fmt, ap);
	if (err > 0)
		fprintf(stderr, "%s: %s%s: %s\n", log_prog, tag, msg, strerror(err));
	else
		fprintf(stderr, "%s: %s%s\n", log_prog, tag, msg);
}

void log_warn(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog("", saved, fmt, ap);
	va_end(ap);
	errno = saved;
}

void log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("", 0, fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("", 0, fmt, ap);
	va_end(ap);
}

void log_debug(enum log_subsys s, const char *fmt, ...)
{
	char tag[32];
	va_list ap;

	if (!log_trace_on(s))
		return;
	snprintf(tag, sizeof tag, "[%s] ", s < LOG_SUBSYS_MAX ? subsys_names[s] : "?");
	va_start(ap, fmt);
	vlog(tag, 0, fmt, ap);
	va_end(ap);
}

int log_error_errno(int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("", r < 0 ? -r : r, fmt, ap);
	va_end(ap);
	return r;
}

void fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog("fatal: ", saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("fatal: ", 0, fmt, ap);
	va_end(ap);
	exit(1);
}
