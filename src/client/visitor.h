/* visitor.h - the Visitor and its application plugins (issue 5,
 * ARCHITECTURE.md §1, reference §5).
 *
 * The event controller hands the visitor one group of URLs (a visit-event
 * from the server) and the sandbox to visit it in.  The visitor picks the
 * application for the group's program, and that application's plugin opens
 * every URL inside the sandbox as the unprivileged user, stays the visit
 * time and closes the application again, filling in one result per URL.
 *
 * Threading: visitor_visit_group() blocks for the length of the visit and is
 * called from the client's visitor thread, while the main thread keeps
 * draining the monitors (a proc connector that is not read loses events).
 * A plugin therefore must not touch anything but its group, the sandbox
 * calls it makes and its own state; it polls `*g->abort` at least every
 * 200 ms and, once it is set, stops the application and returns -ECANCELED
 * (dac: the controller aborts a group at its first unauthorized event).
 *
 * Attribution: in bulk mode a plugin runs one application instance per URL,
 * each in its own child cgroup of the sandbox (sandbox_cgroup_new), and
 * stores that cgroup's id in urls[i].cgroup_id before the instance starts:
 * the analyzer maps every event to a URL by the cgroup of the acting
 * process, which a double fork does not escape.  In seq and dac mode all
 * URLs share one instance and cgroup_id stays 0.
 */
#pragma once

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto.h"

struct sandbox;

#define VISITOR_NAME_MAX 64
#define VISITOR_ARGS_MAX 32

/* One URL of a group and the plugin's result for it. */
struct visit_url {
	const char *url; /* borrowed from the controller */
	/* Filled by the plugin: */
	char cgroup[VISITOR_NAME_MAX]; /* child cgroup of this URL's instance, "" if shared */
	uint64_t cgroup_id;	       /* its cgroup v2 id, 0 if shared */
	pid_t pid;		       /* processId: pid inside the sandbox of the instance, 0 if none */
	bool visited;		       /* the application opened it (even if the page failed) */
	uint32_t major_error;	       /* 0, or a CAP_ERR_* code (NETWORK, TIMEOUT, PROCESS ...) */
	uint32_t minor_error;	       /* e.g. Chromium's net error (positive) or the HTTP status */
	char screenshot[PATH_MAX];     /* host path of a PNG of the page (evidence), "" if none */
};

/* One visit-event. */
struct visit_group {
	const char *program;	       /* as the server sent it */
	enum cap_algorithm algorithm;  /* CAP_ALG_NONE = the plugin's default */
	unsigned visit_time;	       /* seconds to stay once the page has loaded */
	struct visit_url *urls;
	size_t n_urls;
	struct sandbox *sb;	       /* where to visit; borrowed */
	const char *evidence_dir;      /* host folder for screenshots etc. (exists, 0700) */
	atomic_bool *abort;	       /* set by the controller: stop within 200 ms */
};

/* Options of the visitor (client command line / capture-client.conf). */
struct visitor_options {
	const char *applications_conf; /* etc/applications.conf; NULL = built-in applications only */
	bool headful;		       /* run browsers under Xvfb inside the sandbox */
	unsigned load_timeout;	       /* seconds to wait for a page load; 0 = 30 */
	const char *const *hosts;      /* "address name" pairs the sandbox resolves, for host-side
					  downloads (download-first applications); NULL ends */
	const char *resolver;	       /* the sandbox's DNS resolver (IPv4), for host-side
					  downloads of other names; NULL = none */
};

struct visitor;
struct visitor_app;

/* An application plugin (STYLE.md 8: a struct of function pointers only at
 * a real variation point).  Built-ins: chromium, firefox, libreoffice, pdf,
 * fetch; "generic" runs any applications.conf entry. */
struct visitor_plugin {
	const char *name;
	int priority;	     /* the higher wins when two answer the same program (reference §5) */
	unsigned algorithms; /* bit mask: 1u << CAP_ALG_SEQ | 1u << CAP_ALG_DAC | ... */
	enum cap_algorithm default_algorithm;
	/* Visits g with the application app; returns 0 when every URL has a
	 * result (per-URL errors are in g->urls[i]), -ECANCELED when aborted,
	 * another -errno when the group as a whole failed (the controller then
	 * reports the group with that as an error). */
	int (*visit_group)(const struct visitor_options *opts, const struct visitor_app *app,
			   struct visit_group *g);
};

/* An application: a built-in, or one line of applications.conf
 * ("name<TAB>executable[<TAB>yes|no[<TAB>argument template...]]"). */
struct visitor_app {
	char name[VISITOR_NAME_MAX];
	char executable[PATH_MAX]; /* absolute path inside the sandbox */
	bool download_first;	   /* download the URL on the host side, copy it in, open the file */
	/* Argument template; "{url}" / "{file}" / "{home}" are replaced. */
	char *args[VISITOR_ARGS_MAX];
	size_t n_args;
	const struct visitor_plugin *plugin;
};

/* Loads the built-in applications and applications.conf (errors name the
 * file and line; a bad line is skipped, not fatal: see docs/visitor.md). */
int visitor_new(const struct visitor_options *opts, struct visitor **ret);
void visitor_free(struct visitor *v);

/* The applications, built-in ones first; NULL past the end. */
const struct visitor_app *visitor_app_at(const struct visitor *v, size_t i);
/* The application for a program name (case-insensitive); NULL if none. */
const struct visitor_app *visitor_find(const struct visitor *v, const char *program);
/* The exclusion profile of an application (analyzer, docs/client.md
 * "Exclusion profiles"): a built-in plugin's own name (so that the aliases
 * chrome, oowriter, word, acrobatreader and "@builtin" entries share it),
 * else the applications.conf entry's name; lower case, cut to len - 1. */
void visitor_profile(const struct visitor_app *app, char *buf, size_t len);
/* The algorithm a group of `program` is visited with when the server did not
 * say (or said one the plugin cannot do). */
enum cap_algorithm visitor_algorithm(const struct visitor_app *app, enum cap_algorithm asked);

/* Visits the group (blocking; from the visitor thread).  Resets every URL's
 * result first.  Same returns as visitor_plugin.visit_group. */
int visitor_visit_group(struct visitor *v, const struct visitor_app *app, struct visit_group *g);
