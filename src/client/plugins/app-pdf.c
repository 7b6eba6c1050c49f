/* app-pdf.c - the "pdf" plugin: the document is downloaded through the
 * sandbox netns (download.c), copied into the user's home and rendered
 * inside, as the user, by poppler's pdftoppm (Debian poppler-utils).
 *
 * Why pdftoppm (docs/visitor.md): it needs no display, and poppler is the
 * PDF engine of the Linux desktop viewers (evince, okular, the GNOME/KDE
 * previewers), so a document that attacks poppler's parser, font, image or
 * colour-space code meets the same code here as on a desktop.  It renders
 * the first 10 pages (a viewer renders what is shown) to PNG at 72 dpi; the
 * first page becomes the URL's screenshot.  It runs no PDF JavaScript and
 * launches nothing: attacks that need a viewer's actions or JavaScript
 * (Reader-only features) are out of its reach.
 * Loaded = pdftoppm finished with status 0; another status is
 * PROCESS_ERROR with the exit status as minor code (1 = the document could
 * not be opened or parsed); the visit time is stayed after that (whatever
 * an exploit started keeps running in the instance's cgroup), then the
 * cgroup is killed. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app-util.h"
#include "macro.h"
#include "plugins.h"

#define PDFTOPPM  "/usr/bin/pdftoppm"
#define PDF_PAGES "10"
#define SHOT_MAX  (32ULL << 20)

static void render_dir(size_t i, char *buf, size_t len)
{
	snprintf(buf, len, APP_HOME "/.pdf-view-%zu", i);
}

static int prepare(void *ctx, struct visit_group *g, size_t i)
{
	(void)ctx;
	char dir[PATH_MAX];
	render_dir(i, dir, sizeof(dir));
	return app_mkdir_inside(g->sb, dir);
}

static int build_argv(void *ctx, const struct visitor_app *app, struct visit_group *g, size_t i,
		      const char *file, char **argv, size_t max)
{
	(void)ctx;
	(void)g;
	if (!file || max < 11)
		return -EINVAL;
	char dir[PATH_MAX];
	render_dir(i, dir, sizeof(dir));
	const char *exe = app->executable[0] == '/' ? app->executable : PDFTOPPM;
	const char *fixed[] = {exe, "-png", "-r", "72", "-f", "1", "-l", PDF_PAGES, file};
	for (size_t k = 0; k < ELEMENTSOF(fixed); k++)
		if (!(argv[k] = strdup(fixed[k])))
			return -ENOMEM;
	if (asprintf(&argv[ELEMENTSOF(fixed)], "%s/page", dir) < 0) {
		argv[ELEMENTSOF(fixed)] = NULL;
		return -ENOMEM;
	}
	argv[ELEMENTSOF(fixed) + 1] = NULL;
	return 0;
}

static int loaded(void *ctx, struct visit_group *g, size_t i, const struct app_instance *inst)
{
	(void)ctx;
	if (!inst->exited)
		return 0;
	int st = inst->exit_status;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 1;
	app_failed_exit(g, i, inst);
	return -ECHILD;
}

/* The first page's PNG becomes the screenshot (evidence). */
static void finish(void *ctx, struct visit_group *g, size_t i, struct app_instance *inst)
{
	(void)ctx;
	(void)inst;
	if (!g->evidence_dir || !g->urls[i].visited)
		return;
	char dir[PATH_MAX], inside[PATH_MAX + 32], host[PATH_MAX];
	render_dir(i, dir, sizeof(dir));
	if (xsnprintf(host, sizeof(host), "%s/pdf-%zu.png", g->evidence_dir, i) < 0)
		return;
	/* pdftoppm pads the page number to the width of the last page's. */
	static const char *const names[] = {"page-1.png", "page-01.png", "page-001.png",
					    "page-0001.png"};
	for (size_t k = 0; k < ELEMENTSOF(names); k++) {
		snprintf(inside, sizeof(inside), "%s/%s", dir, names[k]);
		unlink(host);
		if (sandbox_copy_out(g->sb, inside, host, SHOT_MAX) == 0) {
			snprintf(g->urls[i].screenshot, sizeof(g->urls[i].screenshot), "%s", host);
			return;
		}
	}
}

static int visit_group(const struct visitor_options *opts, const struct visitor_app *app,
		       struct visit_group *g)
{
	struct app_run run = {
	    .download_ext = "pdf",
	    .prepare = prepare,
	    .build_argv = build_argv,
	    .loaded = loaded,
	    .finish = finish,
	};
	return app_run_group(opts, app, g, &run);
}

const struct visitor_plugin app_pdf_plugin = {
    .name = "pdf",
    .priority = 100,
    .algorithms = 1u << CAP_ALG_SEQ | 1u << CAP_ALG_BULK,
    .default_algorithm = CAP_ALG_SEQ,
    .visit_group = visit_group,
};
