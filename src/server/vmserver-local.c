/* vmserver-local.c - the local-sandbox backend: supervision of the clients.
 *
 * Starts config.local_clients capture-client processes on this host (one per
 * online CPU unless `clients` is given), each as
 * `CLIENT -s ADDR -p PORT -a 1 -b N [client-args]`; every client owns its
 * sandbox and rebuilds it itself after a revert (the closed connection).
 * Each child is watched with a pidfd in the server's epoll loop.
 *
 * Supervision (docs/config.md, "local-sandbox supervision"):
 * - a child that exits is logged (status, run time) and restarted after
 *   max(same_vm_revert_delay, 1 s), doubled for every further consecutive
 *   quick death (ran < 10 s) up to 60 s; at most max-restarts-per-minute restarts of one
 *   child within 60 s, then the next waits (logged).  Its connection, if
 *   still open, is closed, so its group ends with CONNECTION_RESET and is
 *   retried once, then goes to error.log (the original's rules).
 * - starts of different children are spaced by different_vm_revert_delay
 *   (the original staggered its reverts the same way).
 * - a started child must connect within revert_timeout, and a child whose
 *   connection the server closed (a revert) must connect again within
 *   vm_stalled_after_revert_timeout; otherwise it is killed (SIGKILL, counted
 *   as vmStalled) and restarted as above.
 * Connections are tied to children by the ids of their `connect`
 * (vm-server-id 1, vm-id N).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "proto.h"
#include "server-internal.h"
#include "vmserver.h"

#define MAX_ARGS    32
#define QUICK_DEATH 10.0 /* a child that ran less than this died "quickly" */
#define MAX_BACKOFF 60.0
#define RING	    1000 /* >= the maximum of max-restarts-per-minute */

struct child {
	struct srv_watch w;
	unsigned index;
	pid_t pid;
	int pidfd;
	double restart_at; /* > 0: due to be (re)started then */
	double started_at;
	double waiting_since; /* > 0: alive, no connection since then */
	bool after_close;     /* that wait follows a revert, not a start */
	bool killed;	      /* we killed it (a timeout) */
	bool ever_connected;  /* since the last start */
	unsigned conns;	      /* live connections with this child's ids */
	unsigned quick_deaths;
	double starts[RING]; /* ring of recent start times */
	unsigned n_starts;
};

struct local {
	unsigned n;
	struct child *c;
	double last_start; /* of any child */
	int last_index;
};

/* The command line of a child, built before fork (the server has a writer
 * thread: after fork only async-signal-safe calls). */
struct cmdline {
	char port[8], vmid[16], args[sizeof(((struct server_config *)0)->client_args)];
	const char *argv[MAX_ARGS + 10];
};

static void cmdline_build(const struct srv *s, unsigned index, struct cmdline *cl)
{
	size_t k = 0;
	const char *addr = s->o->address;
	if (strcmp(addr, "0.0.0.0") == 0 || strcmp(addr, "::") == 0)
		addr = "127.0.0.1";
	snprintf(cl->port, sizeof(cl->port), "%u", s->o->port);
	snprintf(cl->vmid, sizeof(cl->vmid), "%u", index + 1);
	cl->argv[k++] = s->cfg->client_path;
	cl->argv[k++] = "-s";
	cl->argv[k++] = addr;
	cl->argv[k++] = "-p";
	cl->argv[k++] = cl->port;
	cl->argv[k++] = "-a";
	cl->argv[k++] = "1";
	cl->argv[k++] = "-b";
	cl->argv[k++] = cl->vmid;
	memcpy(cl->args, s->cfg->client_args, sizeof(cl->args));
	for (char *t = cl->args; *t && k < ELEMENTSOF(cl->argv) - 1;) {
		while (*t == ' ' || *t == '\t')
			*t++ = '\0';
		if (!*t)
			break;
		cl->argv[k++] = t;
		while (*t && *t != ' ' && *t != '\t')
			t++;
	}
	cl->argv[k] = NULL;
}

static int child_start(struct srv *s, struct local *l, struct child *c, double now)
{
	struct cmdline cl;
	cmdline_build(s, c->index, &cl);
	pid_t pid = fork();
	if (pid < 0)
		return negative_errno();
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execvp(cl.argv[0], (char *const *)cl.argv);
		_exit(127);
	}
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0) {
		int r = negative_errno();
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return r;
	}
	c->pid = pid;
	c->pidfd = fd;
	c->restart_at = 0;
	c->started_at = c->waiting_since = now;
	c->after_close = c->killed = c->ever_connected = false;
	c->starts[c->n_starts++ % RING] = now;
	l->last_start = now;
	l->last_index = (int)c->index;
	c->w = (struct srv_watch){.kind = W_CHILD, .p = c};
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &c->w};
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		return negative_errno();
	log_debug(LOG_MAIN, "client %u started as pid %d", c->index + 1, (int)pid);
	return 0;
}

/* Earliest time c may start again under max-restarts-per-minute. */
static double rate_limit(const struct srv *s, const struct child *c, double due)
{
	unsigned max = MIN(s->cfg->max_restarts_per_minute, (uint32_t)RING);
	if (c->n_starts <= max)
		return due; /* the first start is not a restart */
	double oldest = c->starts[(c->n_starts - max) % RING];
	return MAX(due, oldest + 60.0);
}

static int local_start(struct srv *s)
{
	struct local *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->n = s->cfg->local_clients;
	l->c = calloc(l->n, sizeof(*l->c));
	if (!l->c) {
		free(l);
		return -ENOMEM;
	}
	l->last_index = -1;
	s->vm = l;
	double now = srv_now();
	for (unsigned i = 0; i < l->n; i++) {
		l->c[i].index = i;
		l->c[i].pidfd = -1;
		l->c[i].restart_at = now; /* started by the tick below, spaced if asked */
	}
	log_info("local-sandbox: starting %u client%s (%s)", l->n, l->n == 1 ? "" : "s",
		 s->cfg->client_path);
	vmserver_local_ops.tick(s, now);
	for (unsigned i = 0; i < l->n; i++)
		if (l->c[i].pid == 0 && s->cfg->different_vm_revert_delay == 0)
			return -ECHILD; /* could not even fork */
	return 0;
}

static void local_child_exit(struct srv *s, void *p)
{
	struct local *l = s->vm;
	struct child *c = p;
	int status = 0;
	double now = srv_now();
	(void)epoll_ctl(s->ep, EPOLL_CTL_DEL, c->pidfd, NULL);
	close(c->pidfd);
	c->pidfd = -1;
	pid_t pid = c->pid;
	if (waitpid(pid, &status, 0) != pid)
		status = 0;
	c->pid = 0;
	c->waiting_since = 0;
	/* its connection may outlive it (a grandchild holding the socket) */
	bool closed = false;
	struct srv_client *next;
	for (struct srv_client *k = s->clients; k; k = next) {
		next = k->next;
		if (!k->dead && k->child == c->index + 1) {
			srv_client_close(s, k, CAP_ERR_CONNECTION_RESET, true);
			closed = true;
		}
	}
	c->conns = 0;
	if (!closed && !c->ever_connected)
		s->sum.reverts++; /* a revert nobody's close counted */
	double ran = now - c->started_at;
	c->quick_deaths = ran < QUICK_DEATH ? c->quick_deaths + 1 : 0;
	double delay = MAX(1.0, (double)s->cfg->same_vm_revert_delay);
	for (unsigned i = 1; i < c->quick_deaths && delay < MAX_BACKOFF; i++)
		delay *= 2;
	if (delay > MAX_BACKOFF && (double)s->cfg->same_vm_revert_delay < MAX_BACKOFF)
		delay = MAX_BACKOFF;
	double due = now + delay, limited = rate_limit(s, c, due);
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	log_warnx("client %u (pid %d) %s with status %d after %.1f s; restarting it in %.0f s%s",
		  c->index + 1, (int)pid, c->killed ? "was killed" : "exited", code, ran,
		  limited - now, limited > due ? " (max-restarts-per-minute reached)" : "");
	c->restart_at = limited;
	(void)l;
}

static void local_tick(struct srv *s, double now)
{
	struct local *l = s->vm;
	for (unsigned i = 0; l && i < l->n; i++) {
		struct child *c = &l->c[i];
		if (c->pid == 0 && c->restart_at > 0 && now >= c->restart_at) {
			/* different_vm_revert_delay: space the starts of different clients */
			double gap = (double)s->cfg->different_vm_revert_delay;
			if (gap > 0 && l->last_index >= 0 && l->last_index != (int)i &&
			    now < l->last_start + gap)
				continue;
			int r = child_start(s, l, c, now);
			if (r < 0) {
				log_error_errno(r, "cannot start client %u", i + 1);
				c->restart_at = now + 5;
			}
			continue;
		}
		if (c->pid > 0 && c->conns == 0 && c->waiting_since > 0 && !c->killed) {
			uint32_t limit = c->after_close ? s->cfg->vm_stalled_after_revert_timeout
							: s->cfg->revert_timeout;
			if (now - c->waiting_since <= (double)limit)
				continue;
			log_warnx(
			    "client %u (pid %d) did not connect within %u s after %s (%s); "
			    "killing it",
			    i + 1, (int)c->pid, limit, c->after_close ? "a revert" : "its start",
			    c->after_close ? "vm_stalled_after_revert_timeout" : "revert_timeout");
			s->stalled++;
			c->killed = true;
			kill(c->pid, SIGKILL); /* the pidfd reports the exit: restart */
		}
	}
}

static unsigned local_client_connected(struct srv *s, const char *vmsid, const char *vmid)
{
	struct local *l = s->vm;
	if (!l || !vmsid || !vmid || strcmp(vmsid, "1") != 0)
		return 0;
	char *end;
	long n = strtol(vmid, &end, 10);
	if (*end || end == vmid || n < 1 || n > (long)l->n)
		return 0;
	struct child *c = &l->c[n - 1];
	if (c->pid == 0)
		return 0; /* not ours (any more) */
	c->conns++;
	c->waiting_since = 0;
	c->ever_connected = true;
	return (unsigned)n;
}

static void local_client_closed(struct srv *s, unsigned child)
{
	struct local *l = s->vm;
	if (!l || child == 0 || child > l->n)
		return;
	struct child *c = &l->c[child - 1];
	if (c->conns > 0 && --c->conns == 0 && c->pid > 0) {
		c->waiting_since = srv_now();
		c->after_close = true;
	}
}

static void local_stop(struct srv *s)
{
	struct local *l = s->vm;
	if (!l)
		return;
	for (unsigned i = 0; i < l->n; i++)
		if (l->c[i].pid > 0)
			kill(l->c[i].pid, SIGTERM);
	for (unsigned i = 0; i < l->n; i++) {
		struct child *c = &l->c[i];
		for (int t = 0; c->pid > 0 && t < 50; t++) {
			if (waitpid(c->pid, NULL, WNOHANG) == c->pid)
				c->pid = 0;
			else
				usleep(40000);
		}
		if (c->pid > 0) {
			kill(c->pid, SIGKILL);
			waitpid(c->pid, NULL, 0);
		}
		if (c->pidfd >= 0)
			close(c->pidfd);
	}
	free(l->c);
	free(l);
	s->vm = NULL;
}

const struct vmserver_ops vmserver_local_ops = {
    .name = "local-sandbox",
    .start = local_start,
    .stop = local_stop,
    .tick = local_tick,
    .child_exit = local_child_exit,
    .client_connected = local_client_connected,
    .client_closed = local_client_closed,
};
