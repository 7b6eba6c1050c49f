/* app-generic.c - the "generic" plugin: runs an applications.conf entry
 * (executable + argument template) once per URL, seq or bulk.
 *
 * As in the original's Applications.conf plugin: start the program with the
 * URL (or, for download-first entries, the downloaded file) as argument,
 * stay the visit time, close it.  On Linux "started" is the successful
 * execve (sandbox_spawn reports an exec failure as PROCESS_ERROR), so there
 * is no 60 s start wait, and the visit time starts when the program has
 * ended on its own or 2 s after its start (see loaded()); closing is cgroup.kill of the instance's child
 * cgroup (immediate, takes double-forked children along).  A generic program
 * gives no page-load signal: visited means "the program ran with the URL",
 * not "the page loaded" (docs/visitor.md); a program that ends on its own
 * with a failure status or a signal before it is closed is PROCESS_ERROR
 * with that status (128 + signal) as minor code. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "app-util.h"
#include "download.h"
#include "macro.h"
#include "plugins.h"

static int build_argv(void *ctx, const struct visitor_app *app, struct visit_group *g, size_t i,
		      const char *file, char **argv, size_t max)
{
	(void)ctx;
	const char *url = g->urls[i].url;
	size_t n = 0;
	argv[n] = strdup(app->executable);
	if (!argv[n++])
		return -ENOMEM;
	if (app->n_args == 0) { /* the original's behaviour: the URL or file as only argument */
		argv[n] = strdup(file ? file : url);
		if (!argv[n++])
			return -ENOMEM;
	}
	for (size_t k = 0; k < app->n_args && n + 1 < max; k++) {
		int r = app_expand_arg(app->args[k], url, file, &argv[n]);
		if (r < 0)
			return r;
		n++;
	}
	argv[n] = NULL;
	return 0;
}

/* A generic program gives no load signal.  It counts as "loaded" (the
 * visit time starts) when it ends on its own - a downloader or the test
 * browser is done with the URL then - or GENERIC_SETTLE_MS after its start,
 * so that visit time 0 does not kill a program before it has acted. */
#define GENERIC_SETTLE_MS 2000

static int loaded(void *ctx, struct visit_group *g, size_t i, const struct app_instance *inst)
{
	(void)ctx;
	(void)g;
	(void)i;
	return inst->exited || download_now_ms() - inst->started_ms >= GENERIC_SETTLE_MS;
}

/* A program that ended on its own before it was closed, with a failure
 * status or by a signal (a crash), is PROCESS_ERROR with the exit status
 * (128 + signal) as minor code; visited stays true. */
static void finish(void *ctx, struct visit_group *g, size_t i, struct app_instance *inst)
{
	(void)ctx;
	if (inst->exited && !(WIFEXITED(inst->exit_status) && WEXITSTATUS(inst->exit_status) == 0))
		app_failed_exit(g, i, inst);
}

static int visit_group(const struct visitor_options *opts, const struct visitor_app *app,
		       struct visit_group *g)
{
	if (app->executable[0] != '/')
		return -EINVAL;
	struct app_run run = {
	    .download_ext = app->download_first ? "bin" : NULL,
	    .build_argv = build_argv,
	    .loaded = loaded,
	    .finish = finish,
	};
	return app_run_group(opts, app, g, &run);
}

const struct visitor_plugin app_generic_plugin = {
    .name = "generic",
    .priority = 0, /* applications.conf entries: 0 (reference §5) */
    .algorithms = 1u << CAP_ALG_SEQ | 1u << CAP_ALG_BULK,
    .default_algorithm = CAP_ALG_SEQ,
    .visit_group = visit_group,
};
