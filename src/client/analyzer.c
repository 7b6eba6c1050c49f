/* analyzer.c - exclusion lists and the "unauthorized?" decision.
 *
 * Profiles are folders under the exclusion dir: system/ (always) and one per
 * application (chromium/, firefox/, ...), each holding the original's list
 * files FileMonitor.exl, ProcessMonitor.exl, RegistryMonitor.exl and
 * ConnectionMonitor.exl.  A program's effective list of one monitor is the
 * system rules + its profile's rules + the rules the server pushed, loaded
 * into ONE excl_list so that the original's decision holds across files: any
 * matching '-' rule reports, else any matching '+' rule excludes, else report.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "client.h"
#include "exclusion.h"
#include "log.h"
#include "visitor.h"

#define MAX_PROFILES 16
#define MAX_PUSHED 4096

static const char *const list_file[CAP_EV_TYPE_MAX] = {
	[CAP_EV_FILE] = "FileMonitor.exl",
	[CAP_EV_PROCESS] = "ProcessMonitor.exl",
	[CAP_EV_REGISTRY] = "RegistryMonitor.exl",
	[CAP_EV_CONNECTION] = "ConnectionMonitor.exl",
};

struct profile {
	char name[64];
	struct excl_list *lists[CAP_EV_TYPE_MAX];
};

struct pushed {
	enum cap_event_type type;
	char sign;
	bool local; /* the client's own (analyzer_add_local_rule): kept by analyzer_clear_pushed */
	char *action, *subject, *object;
};

struct analyzer {
	char dir[PATH_MAX];
	struct profile profiles[MAX_PROFILES];
	size_t n_profiles;
	struct pushed pushed[MAX_PUSHED];
	size_t n_pushed;
};

static void on_bad_line(void *userdata, const char *source, unsigned line, const char *msg)
{
	(void)userdata;
	log_warnx("%s:%u: %s (line skipped)", source, line, msg);
}

static int load_folder(struct profile *p, const char *dir, const char *name)
{
	for (int t = 0; t < CAP_EV_TYPE_MAX; t++) {
		char path[PATH_MAX];
		if (snprintf(path, sizeof(path), "%s/%s/%s", dir, name, list_file[t]) >=
		    (int)sizeof(path))
			return -ENAMETOOLONG;
		int r = excl_list_load_file(p->lists[t], path, on_bad_line, NULL);
		if (r == -ENOENT)
			continue;
		if (r < 0)
			return log_error_errno(r, "exclusion list %s", path);
	}
	return 0;
}

static bool profile_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= 64 || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= '0' && s[i] <= '9') && s[i] != '-' &&
		    s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

static struct profile *profile_find(struct analyzer *a, const char *name)
{
	for (size_t i = 0; i < a->n_profiles; i++)
		if (!strcmp(a->profiles[i].name, name))
			return &a->profiles[i];
	return NULL;
}

bool analyzer_has_profile(const struct analyzer *a, const char *name)
{
	char path[PATH_MAX];
	struct stat st;
	return profile_name_ok(name) &&
	       snprintf(path, sizeof(path), "%s/%s", a->dir, name) < (int)sizeof(path) &&
	       stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

size_t analyzer_warn_unprofiled(const struct analyzer *a, const struct visitor *vis)
{
	const struct visitor_app *app;
	size_t n = 0;
	for (size_t i = 0; (app = visitor_app_at(vis, i)); i++) {
		char profile[VISITOR_NAME_MAX];
		visitor_profile(app, profile, sizeof(profile));
		if (analyzer_has_profile(a, profile))
			continue;
		log_warnx("application %s has no exclusion lists (%s/%s/): what it does when it "
			  "starts counts as unauthorized, so every page it opens may come out "
			  "malicious; `capture-client --calibrate --program %s` prints the lines "
			  "to write there (scripts/calibrate; docs/exclusion-lists.md, "
			  "\"Calibration\")",
			  app->name, a->dir, profile, app->name);
		n++;
	}
	return n;
}

int analyzer_load_profile(struct analyzer *a, const char *name)
{
	if (!profile_name_ok(name))
		return -EINVAL;
	if (profile_find(a, name))
		return 0;
	if (a->n_profiles == MAX_PROFILES)
		return -ENOSPC;
	struct profile *p = &a->profiles[a->n_profiles];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	int r = 0;
	for (int t = 0; t < CAP_EV_TYPE_MAX && r >= 0; t++)
		r = excl_list_new(&p->lists[t]);
	if (r >= 0)
		r = load_folder(p, a->dir, "system");
	if (r >= 0 && strcmp(name, "system") != 0)
		r = load_folder(p, a->dir, name);
	for (size_t i = 0; r >= 0 && i < a->n_pushed; i++) {
		struct pushed *x = &a->pushed[i];
		r = excl_list_add_rule(p->lists[x->type], x->sign, x->action, x->subject,
				       x->object, NULL, 0);
	}
	if (r < 0) {
		for (int t = 0; t < CAP_EV_TYPE_MAX; t++)
			excl_list_free(p->lists[t]);
		return r;
	}
	size_t n = 0;
	for (int t = 0; t < CAP_EV_TYPE_MAX; t++)
		n += excl_list_size(p->lists[t]);
	log_debug(LOG_MAIN, "exclusion profile %s: %zu rules", name, n);
	a->n_profiles++;
	return 0;
}

static void profiles_free(struct analyzer *a)
{
	for (size_t i = 0; i < a->n_profiles; i++)
		for (int t = 0; t < CAP_EV_TYPE_MAX; t++)
			excl_list_free(a->profiles[i].lists[t]);
	a->n_profiles = 0;
}

int analyzer_new(const char *dir, struct analyzer **ret)
{
	struct analyzer *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	if (snprintf(a->dir, sizeof(a->dir), "%s", dir) >= (int)sizeof(a->dir)) {
		free(a);
		return -ENAMETOOLONG;
	}
	int r = analyzer_load_profile(a, "system");
	if (r < 0) {
		analyzer_free(a);
		return r;
	}
	*ret = a;
	return 0;
}

void analyzer_free(struct analyzer *a)
{
	if (!a)
		return;
	profiles_free(a);
	for (size_t i = 0; i < a->n_pushed; i++) {
		free(a->pushed[i].action);
		free(a->pushed[i].subject);
		free(a->pushed[i].object);
	}
	free(a);
}

static int add_rule(struct analyzer *a, enum cap_event_type type, bool excluded, bool local,
		    const char *action, const char *subject, const char *object)
{
	char sign = excluded ? '+' : '-';
	char err[256] = "";
	if ((int)type < 0 || type >= CAP_EV_TYPE_MAX || !action || !subject || !object)
		return -EINVAL;
	/* The server pushes its lists after every (re)connect: the same rule
	 * again must not grow the lists (matching time) nor fill MAX_PUSHED. */
	for (size_t i = 0; i < a->n_pushed; i++) {
		const struct pushed *x = &a->pushed[i];
		if (x->type == type && x->sign == sign && !strcmp(x->action, action) &&
		    !strcmp(x->subject, subject) && !strcmp(x->object, object))
			return 0;
	}
	if (a->n_pushed == MAX_PUSHED) {
		log_warnx("exclusion rule %c %s: more than %d rules pushed, ignored", sign, action,
			  MAX_PUSHED);
		return -ENOSPC;
	}
	/* Validated in a list of its own first, so that a refused rule is in
	 * no profile; then every profile (a failure there is out of memory). */
	struct excl_list *scratch = NULL;
	int r = excl_list_new(&scratch);
	if (r < 0)
		return r;
	r = excl_list_add_rule(scratch, sign, action, subject, object, err, sizeof(err));
	excl_list_free(scratch);
	if (r < 0) {
		log_warnx("exclusion rule %c %s: %s", sign, action, err);
		return r;
	}
	struct pushed *x = &a->pushed[a->n_pushed];
	*x = (struct pushed){.type = type, .sign = sign, .local = local};
	x->action = strdup(action);
	x->subject = strdup(subject);
	x->object = strdup(object);
	if (!x->action || !x->subject || !x->object) {
		free(x->action);
		free(x->subject);
		free(x->object);
		return -ENOMEM;
	}
	a->n_pushed++;
	for (size_t i = 0; i < a->n_profiles; i++)
		if ((r = excl_list_add_rule(a->profiles[i].lists[type], sign, action, subject, object,
					    err, sizeof(err))) < 0)
			return log_error_errno(r, "exclusion rule %c %s: profile %s", sign, action,
					       a->profiles[i].name);
	return 0;
}

int analyzer_add_rule(struct analyzer *a, enum cap_event_type type, bool excluded,
		      const char *action, const char *subject, const char *object)
{
	return add_rule(a, type, excluded, false, action, subject, object);
}

int analyzer_add_local_rule(struct analyzer *a, enum cap_event_type type, bool excluded,
			    const char *action, const char *subject, const char *object)
{
	return add_rule(a, type, excluded, true, action, subject, object);
}

int analyzer_clear_pushed(struct analyzer *a)
{
	size_t k = 0;
	for (size_t i = 0; i < a->n_pushed; i++) {
		struct pushed *x = &a->pushed[i];
		if (x->local) {
			a->pushed[k++] = *x;
			continue;
		}
		free(x->action);
		free(x->subject);
		free(x->object);
	}
	if (k == a->n_pushed)
		return 0;
	a->n_pushed = k;
	/* Rules cannot be taken out of a compiled list: the profiles are loaded
	 * again (the system one now, the others at their next visit). */
	profiles_free(a);
	return analyzer_load_profile(a, "system");
}

size_t analyzer_pushed_count(const struct analyzer *a)
{
	return a->n_pushed;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

bool analyzer_unauthorized(struct analyzer *a, const char *profile, const struct cap_event *ev)
{
	struct profile *p = profile ? profile_find(a, profile) : NULL;
	if (!p && a->n_profiles == 0)
		return true; /* no lists (the system profile failed to load again): report all */
	if (!p)
		p = &a->profiles[0]; /* system */
	if ((int)ev->type < 0 || ev->type >= CAP_EV_TYPE_MAX)
		return true;
	struct excl_list *l = p->lists[ev->type];
	switch (ev->type) {
	case CAP_EV_PROCESS:
		/* as the original: action = the child's image name */
		return excl_list_match(l, base_name(ev->object2), ev->process, ev->object2) ==
		       EXCL_REPORT;
	case CAP_EV_FILE:
		if (!strcmp(ev->action, "Rename"))
			/* both names must be allowed: a rename into a watched place is a write there */
			return excl_list_match(l, ev->action, ev->process, ev->object1) ==
				       EXCL_REPORT ||
			       excl_list_match(l, ev->action, ev->process, ev->object2) ==
				       EXCL_REPORT;
		return excl_list_match(l, ev->action, ev->process, ev->object1) == EXCL_REPORT;
	default:
		return excl_list_match(l, ev->action, ev->process, ev->object1) == EXCL_REPORT;
	}
}
