/* proctable.c - see proctable.h.  A chained hash table keyed by host pid,
 * plus a FIFO of exited entries (oldest exit first) for eviction.  Entries
 * are allocated one by one, so an idle sandbox costs only its processes. */
#include "proctable.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

struct node {
	struct proc_entry e;
	struct node *hnext;		/* hash chain */
	struct node *xprev, *xnext;	/* exited FIFO (only while exited) */
};

struct proctable {
	struct node **buckets;
	size_t nbuckets; /* power of two */
	size_t max;
	size_t size;
	size_t live;
	struct node *xhead, *xtail; /* exited FIFO: head = oldest */
};

static size_t bucket_of(const struct proctable *t, pid_t pid)
{
	uint32_t h = (uint32_t)pid * 2654435761u;
	return h & (t->nbuckets - 1);
}

int proctable_new(size_t max, struct proctable **ret)
{
	if (max == 0)
		max = PROCTABLE_DEFAULT_MAX;
	if (max > (1u << 24))
		return -EINVAL;
	struct proctable *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->nbuckets = 64;
	while (t->nbuckets < max)
		t->nbuckets <<= 1;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	if (!t->buckets) {
		free(t);
		return -ENOMEM;
	}
	t->max = max;
	*ret = t;
	return 0;
}

void proctable_free(struct proctable *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct node *n = t->buckets[i];
		while (n) {
			struct node *next = n->hnext;
			free(n);
			n = next;
		}
	}
	free(t->buckets);
	free(t);
}

static struct node *find(struct proctable *t, pid_t pid)
{
	for (struct node *n = t->buckets[bucket_of(t, pid)]; n; n = n->hnext)
		if (n->e.pid == pid)
			return n;
	return NULL;
}

static void fifo_unlink(struct proctable *t, struct node *n)
{
	if (n->xprev)
		n->xprev->xnext = n->xnext;
	else if (t->xhead == n)
		t->xhead = n->xnext;
	if (n->xnext)
		n->xnext->xprev = n->xprev;
	else if (t->xtail == n)
		t->xtail = n->xprev;
	n->xprev = n->xnext = NULL;
}

static void fifo_push(struct proctable *t, struct node *n)
{
	n->xnext = NULL;
	n->xprev = t->xtail;
	if (t->xtail)
		t->xtail->xnext = n;
	else
		t->xhead = n;
	t->xtail = n;
}

/* Unhooks n from its chain and the FIFO and frees it. */
static void remove_node(struct proctable *t, struct node *n)
{
	struct node **pp = &t->buckets[bucket_of(t, n->e.pid)];
	while (*pp && *pp != n)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = n->hnext;
	if (n->e.exited)
		fifo_unlink(t, n);
	else
		t->live--;
	t->size--;
	free(n);
}

int proctable_add(struct proctable *t, pid_t pid, pid_t ppid, uint64_t start_ns,
		  struct proc_entry **ret)
{
	if (pid <= 0)
		return -EINVAL;
	struct node *old = find(t, pid);
	if (old)
		remove_node(t, old);
	if (t->size >= t->max) {
		if (!t->xhead)
			return -ENOSPC;
		remove_node(t, t->xhead);
	}
	struct node *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->e.pid = pid;
	n->e.ppid = ppid;
	n->e.start_ns = start_ns;
	struct node *parent = ppid > 0 ? find(t, ppid) : NULL;
	if (parent) {
		memcpy(n->e.path, parent->e.path, sizeof(n->e.path));
		memcpy(n->e.cmdline, parent->e.cmdline, sizeof(n->e.cmdline));
		n->e.cgroup_id = parent->e.cgroup_id;
	}
	size_t b = bucket_of(t, pid);
	n->hnext = t->buckets[b];
	t->buckets[b] = n;
	t->size++;
	t->live++;
	if (ret)
		*ret = &n->e;
	return 0;
}

struct proc_entry *proctable_get(struct proctable *t, pid_t pid)
{
	struct node *n = find(t, pid);
	return n ? &n->e : NULL;
}

bool proctable_is_live(struct proctable *t, pid_t pid)
{
	struct node *n = find(t, pid);
	return n && !n->e.exited;
}

int proctable_set_exec(struct proctable *t, pid_t pid, const char *path, const char *cmdline)
{
	struct node *n = find(t, pid);
	if (!n)
		return -ENOENT;
	cap_strlcpy(n->e.path, path, sizeof(n->e.path));
	if (cmdline)
		cap_strlcpy(n->e.cmdline, cmdline, sizeof(n->e.cmdline));
	n->e.execed = true;
	return 0;
}

int proctable_exit(struct proctable *t, pid_t pid)
{
	struct node *n = find(t, pid);
	if (!n)
		return -ENOENT;
	if (n->e.exited)
		return -EALREADY;
	n->e.exited = true;
	t->live--;
	fifo_push(t, n);
	return 0;
}

int proctable_foreach_live(struct proctable *t, int (*cb)(struct proc_entry *e, void *userdata),
			   void *userdata)
{
	for (size_t i = 0; i < t->nbuckets; i++)
		for (struct node *n = t->buckets[i]; n; n = n->hnext) {
			if (n->e.exited)
				continue;
			int r = cb(&n->e, userdata);
			if (r != 0)
				return r;
		}
	return 0;
}

size_t proctable_size(const struct proctable *t)
{
	return t->size;
}

size_t proctable_live(const struct proctable *t)
{
	return t->live;
}

void proctable_cmdline_from_raw(char *dst, size_t size, const char *raw, size_t len)
{
	if (size == 0)
		return;
	while (len > 0 && raw[len - 1] == '\0')
		len--;
	size_t n = MIN(len, size - 1);
	for (size_t i = 0; i < n; i++)
		dst[i] = raw[i] == '\0' ? ' ' : raw[i];
	dst[n] = '\0';
}
