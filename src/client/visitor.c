/* visitor.c - the Visitor: the application table and the visit of a group
 * (visitor.h, docs/visitor.md).
 *
 * The table holds the built-in applications first (each a name bound to a
 * plugin of plugins.h, priority from the plugin), then one "generic" entry
 * per valid line of applications.conf (priority 0, as in the original).
 * Looking a program up takes the entry with the highest priority, the first
 * one on a tie, so a built-in always wins over a conf line of the same name.
 * The table is immutable after visitor_new(): the visitor thread reads it
 * while the main thread does nothing with it.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "macro.h"
#include "plugins.h"
#include "visitor.h"

#define CONF_LINE_MAX	 16384
#define CONF_ARG_MAX	 4096
#define VISITOR_APPS_MAX 256

struct visitor {
	struct visitor_options opts;
	struct visitor_app *apps;
	size_t n_apps;
};

/* The built-in applications.  Aliases are the program names of the
 * original's shipped applications.conf (oowriter, word, acrobatreader). */
static const struct {
	const char *name;
	const char *executable; /* "" = the plugin's default */
	bool download_first;
	const struct visitor_plugin *plugin;
} builtins[] = {
    {"chromium", "/usr/lib/chromium/chromium", false, &app_chromium_plugin},
    {"chrome", "/usr/lib/chromium/chromium", false, &app_chromium_plugin},
    {"firefox", "/usr/lib/firefox-esr/firefox-esr", false, &app_firefox_plugin},
    {"libreoffice", "/usr/lib/libreoffice/program/soffice", true, &app_libreoffice_plugin},
    {"oowriter", "/usr/lib/libreoffice/program/soffice", true, &app_libreoffice_plugin},
    {"word", "/usr/lib/libreoffice/program/soffice", true, &app_libreoffice_plugin},
    {"pdf", "", true, &app_pdf_plugin},
    {"acrobatreader", "", true, &app_pdf_plugin},
    {"fetch", "", false, &app_fetch_plugin},
};

static void app_done(struct visitor_app *a)
{
	for (size_t i = 0; i < a->n_args; i++)
		free(a->args[i]);
	a->n_args = 0;
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= VISITOR_NAME_MAX)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.+-", *s))
			return false;
	return true;
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* An argument template: bounded, no control characters, every '{' opens
 * {url}, {file} (download-first only) or {home}. */
static const char *check_arg(const char *s, bool download_first)
{
	if (strlen(s) > CONF_ARG_MAX)
		return "argument too long";
	if (has_control(s))
		return "control character in an argument";
	for (const char *p = strchr(s, '{'); p; p = strchr(p + 1, '{')) {
		if (strncmp(p, "{url}", 5) == 0 || strncmp(p, "{home}", 6) == 0)
			continue;
		if (strncmp(p, "{file}", 6) == 0) {
			if (!download_first)
				return "{file} needs the download flag yes";
			continue;
		}
		return "unknown placeholder (only {url}, {file}, {home})";
	}
	return NULL;
}

/* Parses one line (already without its newline) into *a.  NULL, or why the
 * line is bad.  Fields are separated by one or more TABs. */
static const char *parse_line(char *line, struct visitor_app *a)
{
	char *fields[3 + VISITOR_ARGS_MAX + 1];
	size_t n = 0;
	char *save = NULL;
	for (char *f = strtok_r(line, "\t", &save); f; f = strtok_r(NULL, "\t", &save)) {
		if (n == ELEMENTSOF(fields))
			return "too many arguments (at most 32)";
		fields[n++] = f;
	}
	if (n < 2)
		return "expected name<TAB>executable[<TAB>yes|no[<TAB>arguments...]]";
	if (!valid_name(fields[0]))
		return "bad name (1-63 of [A-Za-z0-9_.+-])";
	/* Our extension: "@builtin" runs a built-in plugin with these arguments
	 * (e.g. "libreoffice-strict	@libreoffice	yes	macro-security=high"). */
	size_t b = ELEMENTSOF(builtins);
	if (fields[1][0] == '@') {
		for (b = 0; b < ELEMENTSOF(builtins); b++)
			if (strcasecmp(builtins[b].name, fields[1] + 1) == 0)
				break;
		if (b == ELEMENTSOF(builtins))
			return "unknown built-in application after '@'";
	} else if (fields[1][0] != '/' || has_control(fields[1]) || strlen(fields[1]) >= PATH_MAX)
		return "the executable must be an absolute path inside the sandbox, or @builtin";
	if (b < ELEMENTSOF(builtins) && n < 3)
		a->download_first = builtins[b].download_first;
	if (n >= 3) {
		if (strcasecmp(fields[2], "yes") == 0)
			a->download_first = true;
		else if (strcasecmp(fields[2], "no") != 0)
			return "the third field must be yes or no (download first)";
	}
	for (size_t i = 3; i < n; i++) {
		const char *why = check_arg(fields[i], a->download_first);
		if (why)
			return why;
	}
	snprintf(a->name, sizeof(a->name), "%s", fields[0]);
	snprintf(a->executable, sizeof(a->executable), "%s",
		 b < ELEMENTSOF(builtins) ? builtins[b].executable : fields[1]);
	for (size_t i = 3; i < n; i++) {
		if (!(a->args[a->n_args] = strdup(fields[i]))) {
			app_done(a);
			return "out of memory";
		}
		a->n_args++;
	}
	a->plugin = b < ELEMENTSOF(builtins) ? builtins[b].plugin : &app_generic_plugin;
	return NULL;
}

static struct visitor_app *find_name(struct visitor *v, const char *name, bool conf_only)
{
	/* the built-ins come first in v->apps */
	for (size_t i = conf_only ? ELEMENTSOF(builtins) : 0; i < v->n_apps; i++)
		if (strcasecmp(v->apps[i].name, name) == 0)
			return &v->apps[i];
	return NULL;
}

/* Reads applications.conf; bad lines are reported (file:line) and skipped.
 * -errno only when the file cannot be read at all. */
static int load_conf(struct visitor *v, const char *path)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return negative_errno();
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		const char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '#')
			continue;
		if (len > CONF_LINE_MAX) {
			log_warnx("%s:%u: line longer than %d bytes (line skipped)", path, lineno,
				  CONF_LINE_MAX);
			continue;
		}
		if (v->n_apps >= VISITOR_APPS_MAX) {
			log_warnx("%s:%u: more than %d applications (rest skipped)", path, lineno,
				  VISITOR_APPS_MAX);
			break;
		}
		struct visitor_app *a = &v->apps[v->n_apps];
		*a = (struct visitor_app){0};
		const char *why = parse_line(line, a);
		if (!why && find_name(v, a->name, true)) {
			app_done(a);
			why = "duplicate name (the first line wins)";
		}
		if (why) {
			log_warnx("%s:%u: %s (line skipped)", path, lineno, why);
			continue;
		}
		v->n_apps++;
	}
	return ferror(f) ? -EIO : 0;
}

int visitor_new(const struct visitor_options *opts, struct visitor **ret)
{
	struct visitor *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->opts = *opts;
	v->apps = calloc(ELEMENTSOF(builtins) + VISITOR_APPS_MAX, sizeof(*v->apps));
	if (!v->apps) {
		free(v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < ELEMENTSOF(builtins); i++) {
		struct visitor_app *a = &v->apps[v->n_apps++];
		snprintf(a->name, sizeof(a->name), "%s", builtins[i].name);
		snprintf(a->executable, sizeof(a->executable), "%s", builtins[i].executable);
		a->download_first = builtins[i].download_first;
		a->plugin = builtins[i].plugin;
	}
	if (opts->applications_conf) {
		int r = load_conf(v, opts->applications_conf);
		if (r < 0) {
			visitor_free(v);
			return r;
		}
	}
	*ret = v;
	return 0;
}

void visitor_free(struct visitor *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n_apps; i++)
		app_done(&v->apps[i]);
	free(v->apps);
	free(v);
}

const struct visitor_app *visitor_app_at(const struct visitor *v, size_t i)
{
	return i < v->n_apps ? &v->apps[i] : NULL;
}

const struct visitor_app *visitor_find(const struct visitor *v, const char *program)
{
	const struct visitor_app *best = NULL;
	if (!program)
		return NULL;
	for (size_t i = 0; i < v->n_apps; i++) {
		const struct visitor_app *a = &v->apps[i];
		if (strcasecmp(a->name, program) == 0 &&
		    (!best || a->plugin->priority > best->plugin->priority))
			best = a;
	}
	return best;
}

void visitor_profile(const struct visitor_app *app, char *buf, size_t len)
{
	const char *pn = strcmp(app->plugin->name, "generic") ? app->plugin->name : app->name;
	size_t i = 0;
	for (; pn[i] && i + 1 < len; i++)
		buf[i] = (char)tolower((unsigned char)pn[i]);
	buf[i] = '\0';
}

enum cap_algorithm visitor_algorithm(const struct visitor_app *app, enum cap_algorithm asked)
{
	const struct visitor_plugin *p = app->plugin;
	if (asked != CAP_ALG_NONE && (unsigned)asked < 32 && (p->algorithms & (1u << asked)))
		return asked;
	return p->default_algorithm;
}

int visitor_visit_group(struct visitor *v, const struct visitor_app *app, struct visit_group *g)
{
	for (size_t i = 0; i < g->n_urls; i++) {
		struct visit_url *u = &g->urls[i];
		u->cgroup[0] = '\0';
		u->cgroup_id = 0;
		u->pid = 0;
		u->visited = false;
		u->major_error = 0;
		u->minor_error = 0;
		u->screenshot[0] = '\0';
	}
	g->algorithm = visitor_algorithm(app, g->algorithm);
	return app->plugin->visit_group(&v->opts, app, g);
}
