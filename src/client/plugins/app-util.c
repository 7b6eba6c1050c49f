/* app-util.c - see app-util.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app-util.h"
#include "download.h"
#include "macro.h"

void app_instances_init(struct app_instance *inst, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		memset(&inst[i], 0, sizeof(inst[i]));
		inst[i].proc.pidfd = -1;
		inst[i].proc.status_fd = -1;
		inst[i].xvfb.pidfd = -1;
		inst[i].xvfb.status_fd = -1;
	}
}

int app_cgroup(struct visit_group *g, size_t i, bool bulk, struct app_instance *inst)
{
	uint64_t id = 0;
	int r = -EEXIST;
	for (unsigned n = 0; n < 16 && r == -EEXIST; n++) {
		if (n == 0)
			snprintf(inst->cgroup, sizeof(inst->cgroup), "u%zu", i);
		else
			snprintf(inst->cgroup, sizeof(inst->cgroup), "u%zu-%u", i, n);
		r = sandbox_cgroup_new(g->sb, inst->cgroup, &id);
	}
	if (r < 0) {
		inst->cgroup[0] = '\0';
		return r;
	}
	if (bulk) {
		snprintf(g->urls[i].cgroup, sizeof(g->urls[i].cgroup), "%s", inst->cgroup);
		g->urls[i].cgroup_id = id;
	}
	return 0;
}

int app_start(struct visit_group *g, size_t i, bool bulk, const char *const *argv,
	      const char *const *envp, struct app_instance *inst)
{
	int r = inst->cgroup[0] ? 0 : app_cgroup(g, i, bulk, inst);
	if (r < 0)
		return r;
	struct sandbox_exec ex;
	sandbox_exec_init(&ex);
	ex.argv = argv;
	ex.envp = envp;
	ex.cgroup = inst->cgroup;
	r = sandbox_spawn(g->sb, &ex, &inst->proc);
	if (r < 0) {
		app_stop(g, inst);
		if (bulk) {
			g->urls[i].cgroup[0] = '\0';
			g->urls[i].cgroup_id = 0;
		}
		return r;
	}
	inst->started = true;
	inst->started_ms = download_now_ms();
	g->urls[i].pid = inst->proc.inner_pid;
	return 0;
}

int app_spawn_xvfb(struct sandbox *sb, const char *cgroup, atomic_bool *abort,
		   struct sandbox_process *ret, unsigned *ret_display)
{
	int p[2];
	ret->pidfd = ret->status_fd = -1;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	const char *argv[] = {"/usr/bin/Xvfb", "-displayfd", "3",   "-screen", "0",
			      "1280x1024x24",  "-nolisten",  "tcp", NULL};
	struct sandbox_exec ex;
	sandbox_exec_init(&ex);
	ex.argv = argv;
	ex.cgroup = cgroup;
	ex.fds[0] = (struct sandbox_fd){.fd = p[1], .target = 3};
	ex.n_fds = 1;
	int r = sandbox_spawn(sb, &ex, ret);
	close(p[1]);
	if (r < 0) {
		close(p[0]);
		ret->pidfd = ret->status_fd = -1;
		return r;
	}
	/* -displayfd: Xvfb writes "N\n" once it accepts connections. */
	char num[16] = "";
	size_t len = 0;
	int64_t end = download_now_ms() + 10000;
	for (;;) {
		r = download_poll(p[0], POLLIN, end, abort);
		if (r < 0)
			break;
		ssize_t n = read(p[0], num + len, sizeof(num) - 1 - len);
		if (n <= 0) {
			r = -EPIPE; /* Xvfb ended */
			break;
		}
		len += (size_t)n;
		num[len] = '\0';
		char *e;
		unsigned long d = strtoul(num, &e, 10);
		if (e != num && *e == '\n') {
			*ret_display = (unsigned)d;
			r = d < 1000 ? 0 : -EBADMSG;
			break;
		}
		if (len >= sizeof(num) - 1 || (*e && *e != '\n')) {
			r = -EBADMSG;
			break;
		}
	}
	close(p[0]);
	return r;
}

int app_start_xvfb(struct visit_group *g, struct app_instance *inst, unsigned *ret_display)
{
	int r = app_spawn_xvfb(g->sb, inst->cgroup, g->abort, &inst->xvfb, ret_display);
	inst->has_xvfb = inst->xvfb.pidfd >= 0; /* started: app_stop reaps it */
	return r;
}

int app_stay(struct visit_group *g, unsigned ms, struct app_instance *inst, size_t n,
	     bool until_all_exit)
{
	int64_t end = download_now_ms() + ms;
	for (;;) {
		if (g->abort && atomic_load(g->abort))
			return -ECANCELED;
		bool all_done = true;
		for (size_t i = 0; i < n; i++) {
			if (!inst[i].started || inst[i].exited)
				continue;
			int st;
			if (sandbox_process_wait(&inst[i].proc, 0, &st) == 0) {
				inst[i].exited = true;
				inst[i].exit_status = st;
			} else {
				all_done = false;
			}
		}
		int64_t left = end - download_now_ms();
		if ((until_all_exit && all_done) || left <= 0)
			return 0;
		struct timespec ts = {.tv_nsec = (long)MIN(APP_POLL_MS, left) * 1000000L};
		nanosleep(&ts, NULL);
	}
}

/* Waits at most ms milliseconds for one of the instances to end (poll on
 * their pidfds), so that "loaded = it exited" (pdf, generic) is seen at
 * once instead of at the next APP_POLL_MS slice (visbench: pdftoppm took
 * 0.04 s and its visit 0.24 s).  -ECANCELED when *g->abort is set. */
static int wait_exit(struct visit_group *g, unsigned ms, struct app_instance *inst, size_t n)
{
	if (g->abort && atomic_load(g->abort))
		return -ECANCELED;
	_cleanup_free_ struct pollfd *p = calloc(n ? n : 1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	nfds_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (inst[i].started && !inst[i].exited && inst[i].proc.pidfd >= 0)
			p[k++] = (struct pollfd){.fd = inst[i].proc.pidfd, .events = POLLIN};
	if (poll(p, k, (int)MIN(ms, (unsigned)APP_POLL_MS)) < 0 && errno != EINTR)
		return -errno;
	return 0;
}

void app_stop(struct visit_group *g, struct app_instance *inst)
{
	if (inst->cgroup[0]) {
		(void)sandbox_cgroup_kill(g->sb, inst->cgroup);
		inst->cgroup[0] = '\0';
	}
	if (inst->started) {
		int st;
		if (!inst->exited && sandbox_process_wait(&inst->proc, 2000, &st) == 0) {
			inst->exited = true;
			inst->exit_status = st;
		}
		sandbox_process_done(&inst->proc);
		inst->started = false;
	}
	if (inst->has_xvfb) { /* killed with the cgroup above */
		int st;
		(void)sandbox_process_wait(&inst->xvfb, 2000, &st);
		sandbox_process_done(&inst->xvfb);
		inst->has_xvfb = false;
	}
}

void app_download_options(const struct visitor_options *opts, const struct visit_group *g,
			  struct download_options *ret)
{
	*ret = (struct download_options){
	    .netns_fd = sandbox_netns_fd(g->sb),
	    .hosts = opts ? opts->hosts : NULL,
	    .resolver = opts ? opts->resolver : NULL,
	    .timeout = opts && opts->load_timeout ? opts->load_timeout : 0,
	    .abort = g->abort,
	    .out_fd = -1,
	};
}

bool app_failed_exit(struct visit_group *g, size_t i, const struct app_instance *inst)
{
	if (!inst->exited)
		return false;
	int st = inst->exit_status;
	g->urls[i].major_error = CAP_ERR_PROCESS_ERROR;
	g->urls[i].minor_error =
	    WIFEXITED(st) ? (uint32_t)WEXITSTATUS(st) : 128u + (uint32_t)WTERMSIG(st);
	return true;
}

int app_download(const struct visitor_options *opts, struct visit_group *g, size_t i,
		 const char *fallback_ext, char *ret_inside)
{
	struct download_options o;
	app_download_options(opts, g, &o);
	char prefix[24] = "";
	if (i > 0)
		snprintf(prefix, sizeof(prefix), "%zu-", i);
	_cleanup_free_ struct download_result *res = calloc(1, sizeof(*res));
	if (!res)
		return -ENOMEM;
	int r = download_into_sandbox(g->sb, &o, g->urls[i].url, APP_HOME, prefix, fallback_ext,
				      res, ret_inside, PATH_MAX);
	if (r == -ECANCELED)
		return r;
	if (r < 0) {
		g->urls[i].major_error = CAP_ERR_NETWORK_ERROR;
		g->urls[i].minor_error = r == -EREMOTEIO ? (uint32_t)res->status : (uint32_t)-r;
	}
	return r;
}

int app_expand_arg(const char *tmpl, const char *url, const char *file, char **ret)
{
	static const char *const keys[] = {"{url}", "{file}", "{home}"};
	const char *vals[] = {url ? url : "", file ? file : "", APP_HOME};
	size_t cap = strlen(tmpl) + 1;
	for (const char *p = tmpl; *p; p++)
		for (size_t k = 0; k < ELEMENTSOF(keys); k++)
			if (strncmp(p, keys[k], strlen(keys[k])) == 0)
				cap += strlen(vals[k]);
	char *out = malloc(cap);
	if (!out)
		return -ENOMEM;
	size_t o = 0;
	for (const char *p = tmpl; *p;) {
		size_t k;
		for (k = 0; k < ELEMENTSOF(keys); k++)
			if (strncmp(p, keys[k], strlen(keys[k])) == 0)
				break;
		if (k < ELEMENTSOF(keys)) {
			memcpy(out + o, vals[k], strlen(vals[k]));
			o += strlen(vals[k]);
			p += strlen(keys[k]);
		} else {
			out[o++] = *p++;
		}
	}
	out[o] = '\0';
	*ret = out;
	return 0;
}

static int open_root(struct sandbox *sb)
{
	int fd = open(sandbox_root(sb), O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int openat2_nofollow(int dirfd, const char *name, uint64_t flags, uint64_t resolve)
{
	struct open_how how = {.flags = flags | O_CLOEXEC, .resolve = resolve};
	long fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
	return fd < 0 ? -errno : (int)fd;
}

int app_mkdir_inside(struct sandbox *sb, const char *inside)
{
	if (inside[0] != '/' || strlen(inside) >= PATH_MAX)
		return -EINVAL;
	_cleanup_close_ int dir = open_root(sb);
	if (dir < 0)
		return dir;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s", inside);
	for (char *save = NULL, *c = strtok_r(path, "/", &save); c;
	     c = strtok_r(NULL, "/", &save)) {
		if (strcmp(c, ".") == 0 || strcmp(c, "..") == 0)
			return -EINVAL;
		bool made = mkdirat(dir, c, 0700) == 0;
		if (!made && errno != EEXIST)
			return -errno;
		int next = openat2_nofollow(dir, c, O_PATH | O_DIRECTORY,
					    RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
						RESOLVE_NO_XDEV | RESOLVE_BENEATH);
		if (next < 0)
			return next;
		close(dir);
		dir = next;
		if (made &&
		    fchownat(dir, "", SANDBOX_DEFAULT_UID, SANDBOX_DEFAULT_GID, AT_EMPTY_PATH) < 0)
			return -errno;
	}
	return 0;
}

int app_exists_inside(struct sandbox *sb, const char *inside)
{
	_cleanup_close_ int root = open_root(sb);
	if (root < 0)
		return root;
	int fd = openat2_nofollow(root, inside[0] == '/' ? inside + 1 : inside, O_PATH,
				  RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
				      RESOLVE_NO_XDEV);
	if (fd >= 0) {
		close(fd);
		return 1;
	}
	return fd == -ENOENT ? 0 : fd;
}

int app_write_inside(struct sandbox *sb, const char *inside, const char *data, size_t len)
{
	char tmpl[] = "/tmp/capture-app.XXXXXX";
	_cleanup_close_ int fd = mkostemp(tmpl, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = 0;
	while (len > 0 && r == 0) {
		ssize_t w = write(fd, data, len);
		if (w < 0 && errno != EINTR)
			r = -errno;
		else if (w > 0) {
			data += w;
			len -= (size_t)w;
		}
	}
	if (r == 0)
		r = sandbox_copy_in(sb, tmpl, inside);
	unlink(tmpl);
	return r;
}

static void free_argv(char **argv, size_t max)
{
	for (size_t k = 0; k < max && argv[k]; k++) {
		free(argv[k]);
		argv[k] = NULL;
	}
}

/* Download (if any), prepare and start URL i; its error is set on failure. */
static int run_start(const struct visitor_options *opts, const struct visitor_app *app,
		     struct visit_group *g, const struct app_run *run, size_t i, bool bulk,
		     struct app_instance *inst)
{
	struct visit_url *u = &g->urls[i];
	char file[PATH_MAX] = "";
	int r;
	if (run->download_ext) {
		r = app_download(opts, g, i, run->download_ext, file);
		if (r < 0)
			return r;
	}
	if (run->prepare) {
		r = run->prepare(run->ctx, g, i);
		if (r < 0) {
			u->major_error = CAP_ERR_PROCESS_ERROR;
			u->minor_error = (uint32_t)-r;
			return r;
		}
	}
	char *argv[VISITOR_ARGS_MAX + 8] = {0};
	r = run->build_argv(run->ctx, app, g, i, file[0] ? file : NULL, argv, ELEMENTSOF(argv));
	if (r >= 0)
		r = app_start(g, i, bulk, (const char *const *)argv, run->envp, inst);
	free_argv(argv, ELEMENTSOF(argv));
	if (r < 0 && r != -ECANCELED) {
		u->major_error = CAP_ERR_PROCESS_ERROR;
		u->minor_error = (uint32_t)-r;
	}
	return r;
}

/* Waits until every started instance of [from, to) has loaded (or failed,
 * or the load timeout passed), then the visit time. */
static int run_visit(const struct visitor_options *opts, struct visit_group *g,
		     const struct app_run *run, struct app_instance *inst, size_t from, size_t to)
{
	int64_t load_end =
	    download_now_ms() + 1000 * (opts && opts->load_timeout ? opts->load_timeout : 30);
	while (run->loaded) {
		bool all = true;
		for (size_t i = from; i < to; i++) {
			struct visit_url *u = &g->urls[i];
			if (!inst[i].started || u->visited || u->major_error)
				continue;
			(void)app_stay(g, 0, &inst[i], 1, false);
			int r = run->loaded(run->ctx, g, i, &inst[i]);
			if (r > 0)
				u->visited = true;
			else if (r < 0 && !u->major_error) {
				u->major_error = CAP_ERR_PROCESS_ERROR;
				u->minor_error = (uint32_t)-r;
			} else if (r == 0)
				all = false;
		}
		if (all)
			break;
		if (download_now_ms() >= load_end) {
			for (size_t i = from; i < to; i++)
				if (inst[i].started && !g->urls[i].visited &&
				    !g->urls[i].major_error)
					g->urls[i].major_error = CAP_ERR_TIMEOUT_ERROR;
			break;
		}
		/* Every instance that ended is marked exited first, also those
		 * already visited: wait_exit polls the others' pidfds, and a dead
		 * process's pidfd stays readable (it would spin). */
		(void)app_stay(g, 0, &inst[from], to - from, false);
		int r = wait_exit(g, APP_LOAD_POLL_MS, &inst[from], to - from);
		if (r < 0)
			return r;
	}
	if (!run->loaded)
		for (size_t i = from; i < to; i++)
			if (inst[i].started)
				g->urls[i].visited = true;
	int r = app_stay(g, 1000u * g->visit_time, &inst[from], to - from, false);
	if (r < 0)
		return r;
	if (run->finish)
		for (size_t i = from; i < to; i++)
			if (inst[i].started)
				run->finish(run->ctx, g, i, &inst[i]);
	return 0;
}

int app_run_group(const struct visitor_options *opts, const struct visitor_app *app,
		  struct visit_group *g, const struct app_run *run)
{
	_cleanup_free_ struct app_instance *inst = calloc(g->n_urls ? g->n_urls : 1, sizeof(*inst));
	if (!inst)
		return -ENOMEM;
	app_instances_init(inst, g->n_urls);
	bool bulk = visitor_algorithm(app, g->algorithm) == CAP_ALG_BULK;
	int r = 0;
	if (bulk) {
		for (size_t i = 0; i < g->n_urls && r != -ECANCELED; i++)
			r = run_start(opts, app, g, run, i, true, &inst[i]);
		if (r != -ECANCELED)
			r = run_visit(opts, g, run, inst, 0, g->n_urls);
		for (size_t i = 0; i < g->n_urls; i++)
			app_stop(g, &inst[i]);
	} else {
		for (size_t i = 0; i < g->n_urls && r != -ECANCELED; i++) {
			r = run_start(opts, app, g, run, i, false, &inst[i]);
			if (r >= 0)
				r = run_visit(opts, g, run, inst, i, i + 1);
			app_stop(g, &inst[i]);
		}
	}
	return r == -ECANCELED ? -ECANCELED : 0;
}
