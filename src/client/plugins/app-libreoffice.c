/* app-libreoffice.c - the "libreoffice" plugin: a document is downloaded by
 * the client through the sandbox netns (download.c), copied into the user's
 * home and opened headless by soffice inside, as the user, with a guest
 * profile ~/.lo-capture whose macro security is set before the start
 * (registrymodifications.xcu written into the profile from the host).
 *
 * Macro security (app argument "macro-security=LEVEL", default low):
 *   low (0: every macro runs - the honeypot's purpose), medium (1), high (2),
 *   very-high (3), disabled (DisableMacrosExecution).  Headless there is no
 *   one to answer a prompt, so medium behaves like high.
 * Loaded = LibreOffice's lock file "~/.~lock.NAME#" appeared (it writes it
 * once the document is open); the visit time starts then.  soffice exiting
 * before that is PROCESS_ERROR (minor = wait status), no lock file within
 * the load timeout TIMEOUT_ERROR.  Closing is cgroup.kill: no save, no
 * recovery data, and whatever the macro started goes too.
 * One soffice per URL (its own profile copy per URL in bulk mode: two
 * instances cannot share a profile). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app-util.h"
#include "macro.h"
#include "plugins.h"

#define SOFFICE "/usr/lib/libreoffice/program/soffice"

struct lo_ctx {
	int level;     /* MacroSecurityLevel 0..3 */
	bool disabled; /* DisableMacrosExecution */
	char (*files)[PATH_MAX];
};

static int parse_level(const struct visitor_app *app, struct lo_ctx *c)
{
	static const char *const names[] = {"low", "medium", "high", "very-high"};
	c->level = 0;
	c->disabled = false;
	for (size_t k = 0; k < app->n_args; k++) {
		const char *a = app->args[k];
		if (strncmp(a, "macro-security=", 15) != 0)
			continue;
		a += 15;
		bool found = false;
		for (int l = 0; l < 4; l++)
			if (strcmp(a, names[l]) == 0) {
				c->level = l;
				found = true;
			}
		if (strcmp(a, "disabled") == 0) {
			c->level = 3;
			c->disabled = found = true;
		}
		if (!found)
			return -EINVAL;
	}
	return 0;
}

static void profile_dir(size_t i, char *buf, size_t len)
{
	snprintf(buf, len, APP_HOME "/.lo-capture%s%.0zu", i ? "-" : "", i);
}

static int prepare(void *ctx, struct visit_group *g, size_t i)
{
	struct lo_ctx *c = ctx;
	char dir[PATH_MAX], path[PATH_MAX + 64];
	profile_dir(i, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/user", dir);
	int r = app_mkdir_inside(g->sb, path);
	if (r < 0)
		return r;
	char xcu[1024];
	static const char item[] =
	    "<item oor:path=\"/org.openoffice.Office.Common/Security/Scripting\">"
	    "<prop oor:name=\"%s\" oor:op=\"fuse\"><value>%s</value></prop></item>\n";
	char l1[256], l2[256];
	char lv[8];
	snprintf(lv, sizeof(lv), "%d", c->level);
	snprintf(l1, sizeof(l1), item, "MacroSecurityLevel", lv);
	snprintf(l2, sizeof(l2), item, "DisableMacrosExecution", c->disabled ? "true" : "false");
	r = xsnprintf(
	    xcu, sizeof(xcu),
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<oor:items xmlns:oor=\"http://openoffice.org/2001/registry\" "
	    "xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" "
	    "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n%s%s"
	    /* a set locale: else soffice.bin runs popen("paperconf") on every
	       start, a shell just like a macro's Shell() (docs/exclusion-lists.md) */
	    "<item oor:path=\"/org.openoffice.Setup/L10N\"><prop oor:name=\"ooSetupSystemLocale\" "
	    "oor:op=\"fuse\"><value>en-US</value></prop></item>\n"
	    "</oor:items>\n",
	    l1, l2);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "%s/user/registrymodifications.xcu", dir);
	return app_write_inside(g->sb, path, xcu, strlen(xcu));
}

static int build_argv(void *ctx, const struct visitor_app *app, struct visit_group *g, size_t i,
		      const char *file, char **argv, size_t max)
{
	struct lo_ctx *c = ctx;
	(void)g;
	if (!file || max < 7)
		return -EINVAL;
	snprintf(c->files[i], PATH_MAX, "%s", file);
	char dir[PATH_MAX];
	profile_dir(i, dir, sizeof(dir));
	const char *exe = app->executable[0] == '/' ? app->executable : SOFFICE;
	if (asprintf(&argv[0], "%s", exe) < 0 || !(argv[1] = strdup("--headless")) ||
	    !(argv[2] = strdup("--norestore")) || !(argv[3] = strdup("--nologo")) ||
	    asprintf(&argv[4], "-env:UserInstallation=file://%s", dir) < 0 ||
	    !(argv[5] = strdup(file)))
		return -ENOMEM;
	argv[6] = NULL;
	return 0;
}

static int loaded(void *ctx, struct visit_group *g, size_t i, const struct app_instance *inst)
{
	struct lo_ctx *c = ctx;
	const char *slash = strrchr(c->files[i], '/');
	char lock[PATH_MAX + 16];
	if (!slash || xsnprintf(lock, sizeof(lock), "%.*s/.~lock.%s#", (int)(slash - c->files[i]),
				c->files[i], slash + 1) < 0)
		return -ENAMETOOLONG;
	int r = app_exists_inside(g->sb, lock);
	if (r != 0)
		return r;
	return app_failed_exit(g, i, inst) ? -ECHILD : 0;
}

static int visit_group(const struct visitor_options *opts, const struct visitor_app *app,
		       struct visit_group *g)
{
	struct lo_ctx c;
	int r = parse_level(app, &c);
	if (r < 0)
		return r;
	c.files = calloc(g->n_urls ? g->n_urls : 1, sizeof(*c.files));
	if (!c.files)
		return -ENOMEM;
	struct app_run run = {
	    .download_ext = "odt",
	    .ctx = &c,
	    .prepare = prepare,
	    .build_argv = build_argv,
	    .loaded = loaded,
	};
	r = app_run_group(opts, app, g, &run);
	free(c.files);
	return r;
}

const struct visitor_plugin app_libreoffice_plugin = {
    .name = "libreoffice",
    .priority = 100,
    .algorithms = 1u << CAP_ALG_SEQ | 1u << CAP_ALG_BULK,
    .default_algorithm = CAP_ALG_SEQ,
    .visit_group = visit_group,
};
