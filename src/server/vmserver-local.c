/* vmserver-local.c - the local-sandbox backend.
 *
 * Starts config.local_clients capture-client processes on this host, each
 * as `CLIENT -s ADDR -p PORT -a 1 -b N [client-args]`; every client owns
 * its sandbox and rebuilds it itself after a revert (the closed
 * connection).  Each child is watched with a pidfd in the server's epoll
 * loop; one that exits is restarted after same_vm_revert_delay seconds (at
 * least 1 s, so that a client that cannot start does not spin).
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
#include "server-internal.h"
#include "vmserver.h"

#define MAX_ARGS 32

struct child {
	struct srv_watch w;
	unsigned index;
	pid_t pid;
	int pidfd;
	double restart_at; /* 0 = running or not due */
};

struct local {
	unsigned n;
	struct child *c;
};

static void child_exec(const struct srv *s, unsigned index)
{
	char port[8], vmid[16], args[sizeof(s->cfg->client_args)];
	const char *argv[MAX_ARGS + 10];
	size_t k = 0;
	const char *addr = s->o->address;
	if (strcmp(addr, "0.0.0.0") == 0 || strcmp(addr, "::") == 0)
		addr = "127.0.0.1";
	snprintf(port, sizeof(port), "%u", s->o->port);
	snprintf(vmid, sizeof(vmid), "%u", index + 1);
	argv[k++] = s->cfg->client_path;
	argv[k++] = "-s";
	argv[k++] = addr;
	argv[k++] = "-p";
	argv[k++] = port;
	argv[k++] = "-a";
	argv[k++] = "1";
	argv[k++] = "-b";
	argv[k++] = vmid;
	memcpy(args, s->cfg->client_args, sizeof(args));
	for (char *t = args; *t && k < ELEMENTSOF(argv) - 1;) {
		while (*t == ' ' || *t == '\t')
			*t++ = '\0';
		if (!*t)
			break;
		argv[k++] = t;
		while (*t && *t != ' ' && *t != '\t')
			t++;
	}
	argv[k] = NULL;
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execvp(argv[0], (char *const *)argv);
	_exit(127);
}

static int child_start(struct srv *s, struct child *c)
{
	pid_t pid = fork();
	if (pid < 0)
		return negative_errno();
	if (pid == 0)
		child_exec(s, c->index);
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
	c->w = (struct srv_watch){.kind = W_CHILD, .p = c};
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &c->w};
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		return negative_errno();
	log_debug(LOG_MAIN, "client %u started as pid %d", c->index + 1, (int)pid);
	return 0;
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
	s->vm = l;
	for (unsigned i = 0; i < l->n; i++) {
		l->c[i].index = i;
		l->c[i].pidfd = -1;
		int r = child_start(s, &l->c[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

static void local_child_exit(struct srv *s, void *p)
{
	struct child *c = p;
	int status = 0;
	(void)epoll_ctl(s->ep, EPOLL_CTL_DEL, c->pidfd, NULL);
	close(c->pidfd);
	c->pidfd = -1;
	if (waitpid(c->pid, &status, 0) == c->pid)
		log_warnx("client %u (pid %d) exited with status %d; restarting it", c->index + 1,
		          (int)c->pid, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	c->pid = 0;
	s->sum.reverts++;
	c->restart_at = srv_now() + MAX(1u, s->cfg->same_vm_revert_delay);
}

static void local_tick(struct srv *s, double now)
{
	struct local *l = s->vm;
	for (unsigned i = 0; l && i < l->n; i++) {
		struct child *c = &l->c[i];
		if (c->pid == 0 && c->restart_at > 0 && now >= c->restart_at) {
			int r = child_start(s, c);
			if (r < 0) {
				log_error_errno(r, "cannot restart client %u", i + 1);
				c->restart_at = now + 5;
			}
		}
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
};
