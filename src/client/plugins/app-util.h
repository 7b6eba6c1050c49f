/* app-util.h - what the visapps plugins share (docs/visitor.md): one
 * application instance per URL in its own child cgroup, the visit-time wait
 * that polls the abort flag, closing by cgroup.kill, the download-first step
 * and argument templates.  Used by app-generic.c, app-libreoffice.c,
 * app-pdf.c, app-firefox.c and app-fetch.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "sandbox.h"
#include "visitor.h"

/* The sandbox user's home (sandbox.h: /home/USER, default user). */
#define APP_HOME    "/home/" SANDBOX_DEFAULT_USER
#define APP_POLL_MS 200
/* While waiting for "loaded" (a lock file, a process that ends): the check
 * is one openat2 or waitid, an exit wakes the wait at once (visbench). */
#define APP_LOAD_POLL_MS 25

struct app_instance {
	struct sandbox_process proc;
	bool started; /* proc is valid */
	bool exited;  /* it ended (status in exit_status) */
	int64_t started_ms; /* download_now_ms() when it started */
	int exit_status;
	char cgroup[VISITOR_NAME_MAX]; /* child cgroup, "" if none */
	struct sandbox_process xvfb;   /* headful: its X server, valid if has_xvfb */
	bool has_xvfb;
};

struct download_options;

/* Initialises n instances (nothing started).  The URLs' results are reset
 * by visitor_visit_group before a plugin runs. */
void app_instances_init(struct app_instance *inst, size_t n);

/* Creates the instance's child cgroup "u<i>" (a suffix is added if that
 * name is taken); in bulk mode URL i's cgroup and cgroup_id are filled. */
int app_cgroup(struct visit_group *g, size_t i, bool bulk, struct app_instance *inst);

/* Starts Xvfb (-displayfd, 1280x1024x24, no TCP) in the instance's cgroup
 * (app_cgroup first) and waits <= 10 s for its display number. */
int app_start_xvfb(struct visit_group *g, struct app_instance *inst, unsigned *ret_display);
/* The same for any process slot: Xvfb (-displayfd, 1280x1024x24, no TCP) in
 * the child cgroup `cgroup`, waiting <= 10 s (abort polled) for its display
 * number.  ret is valid (pidfd >= 0) iff Xvfb was started, also when -errno
 * is returned afterwards; the caller reaps it. */
int app_spawn_xvfb(struct sandbox *sb, const char *cgroup, atomic_bool *abort,
		   struct sandbox_process *ret, unsigned *ret_display);

/* Starts argv (argv[0] absolute, inside) for URL i in the instance's child
 * cgroup, made by app_cgroup if it does not exist yet.  In bulk mode the URL's
 * cgroup and cgroup_id are filled in before the start; pid always.  envp
 * NULL = the sandbox default environment. */
int app_start(struct visit_group *g, size_t i, bool bulk, const char *const *argv,
	      const char *const *envp, struct app_instance *inst);

/* Waits ms milliseconds (in APP_POLL_MS slices), noting instances that end;
 * -ECANCELED when *g->abort is set.  With until_all_exit, returns early
 * once every started instance has ended. */
int app_stay(struct visit_group *g, unsigned ms, struct app_instance *inst, size_t n,
	     bool until_all_exit);

/* Closes instance inst: cgroup.kill of its child cgroup (the instance and
 * everything it started, double forks included), reap, free.  Idempotent. */
void app_stop(struct visit_group *g, struct app_instance *inst);

/* Downloads URL i on the host side through the sandbox netns and copies it
 * into the user's home ("N-" prefixed for N > 0 in a group); sets the URL's
 * error (NETWORK_ERROR, minor = HTTP status or errno) on failure.  ret_inside
 * (PATH_MAX) gets the path inside. */
int app_download(const struct visitor_options *opts, struct visit_group *g, size_t i,
		 const char *fallback_ext, char *ret_inside);

/* Expands one argument template: {url}, {file}, {home} replaced; a
 * template without any gives a copy.  *ret is malloc'ed. */
int app_expand_arg(const char *tmpl, const char *url, const char *file, char **ret);

/* Download options for group g: the sandbox netns, opts->hosts, the load
 * timeout, g->abort, body discarded (out_fd -1). */
void app_download_options(const struct visitor_options *opts, const struct visit_group *g,
			  struct download_options *ret);

/* If inst has ended: sets URL i's PROCESS_ERROR with the exit status (128 +
 * signal when killed) as minor code and returns true. */
bool app_failed_exit(struct visit_group *g, size_t i, const struct app_instance *inst);

/* Creates the directory `inside` (absolute, every missing component, mode
 * 0700, owned by the sandbox user) from the host through the sandbox root,
 * never following a symlink (openat2 RESOLVE_NO_SYMLINKS per component). */
int app_mkdir_inside(struct sandbox *sb, const char *inside);
/* Whether `inside` exists (no symlink followed, RESOLVE_IN_ROOT): 1, 0, or -errno. */
int app_exists_inside(struct sandbox *sb, const char *inside);
/* Writes data to a host temp file and copies it in as `inside` (0644, user). */
int app_write_inside(struct sandbox *sb, const char *inside, const char *data, size_t len);

/* How a plugin runs one instance per URL (seq: one after the other; bulk:
 * all at once, each in its child cgroup). */
struct app_run {
	const char *download_ext; /* download first when non-NULL (fallback extension) */
	const char *const *envp;  /* NULL = the sandbox default */
	void *ctx;
	/* Prepares URL i before its start (profile etc.); may be NULL. */
	int (*prepare)(void *ctx, struct visit_group *g, size_t i);
	/* Fills argv (NULL-terminated, at most max - 1 entries, each malloc'ed)
	 * for URL i; file = the document inside or NULL. */
	int (*build_argv)(void *ctx, const struct visitor_app *app, struct visit_group *g, size_t i,
			  const char *file, char **argv, size_t max);
	/* 1 once URL i counts as loaded (the visit time starts then), 0 not
	 * yet, or -errno: the URL fails (its error set by the callback).  NULL =
	 * loaded when started.  Not loaded within the load timeout gives
	 * TIMEOUT_ERROR. */
	int (*loaded)(void *ctx, struct visit_group *g, size_t i, const struct app_instance *inst);
	/* Called before the instance is closed (evidence); may be NULL. */
	void (*finish)(void *ctx, struct visit_group *g, size_t i, struct app_instance *inst);
};

/* Runs the group as described above; returns like visitor_plugin.visit_group. */
int app_run_group(const struct visitor_options *opts, const struct visitor_app *app,
		  struct visit_group *g, const struct app_run *run);
