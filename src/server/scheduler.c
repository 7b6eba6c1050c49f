/* scheduler.c - see scheduler.h for the design. */
#include "scheduler.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"


struct scheduler {
	struct sched_params p;
	sched_final_fn final_fn;
	void *userdata;

	/* every URL of the run, for the duplicate check; owns the URLs */
	struct sched_url **set;
	size_t set_cap, set_n;

	/* max-heap of queued URLs */
	struct sched_url **heap;
	size_t heap_n, heap_cap;

	/* ring buffer of split / retried groups, front = next out */
	struct sched_group **dq;
	size_t dq_head, dq_n, dq_cap;

	size_t running;
	uint32_t next_group_id;
	uint64_t next_seq;
};

static uint32_t url_hash(const char *url, const char *client, uint32_t time)
{
	uint32_t h = 2166136261u;
	for (const char *c = url; *c; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	h = (h ^ 0xffu) * 16777619u;
	for (const char *c = client; *c; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	for (int i = 0; i < 4; i++)
		h = (h ^ ((time >> (8 * i)) & 0xffu)) * 16777619u;
	return h;
}

int sched_algorithm_from_string(const char *s, enum sched_algorithm *ret)
{
	static const char *const names[] = {"seq", "bulk", "dac"};
	for (size_t i = 0; i < ELEMENTSOF(names); i++)
		if (strcmp(s, names[i]) == 0) {
			*ret = (enum sched_algorithm)i;
			return 0;
		}
	return -EINVAL;
}

const char *sched_algorithm_to_string(enum sched_algorithm a)
{
	return a == SCHED_SEQ ? "seq" : a == SCHED_BULK ? "bulk" : "dac";
}

int sched_new(const struct sched_params *p, sched_final_fn fn, void *userdata,
              struct scheduler **ret)
{
	if (!p || !fn || p->group_size == 0)
		return -EINVAL;
	struct scheduler *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->p = *p;
	s->final_fn = fn;
	s->userdata = userdata;
	s->next_group_id = 1;
	s->set_cap = 1024;
	s->set = calloc(s->set_cap, sizeof(*s->set));
	if (!s->set) {
		free(s);
		return -ENOMEM;
	}
	*ret = s;
	return 0;
}

static void group_free(struct sched_group *g)
{
	if (!g)
		return;
	free(g->urls);
	free(g);
}

void sched_free(struct scheduler *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->set_cap; i++)
		free(s->set[i]);
	for (size_t i = 0; i < s->dq_n; i++)
		group_free(s->dq[(s->dq_head + i) % s->dq_cap]);
	free(s->set);
	free(s->heap);
	free(s->dq);
	free(s);
}

static int set_grow(struct scheduler *s)
{
	size_t cap = s->set_cap * 2;
	struct sched_url **n = calloc(cap, sizeof(*n));
	if (!n)
		return -ENOMEM;
	for (size_t i = 0; i < s->set_cap; i++) {
		struct sched_url *u = s->set[i];
		if (!u)
			continue;
		size_t j = u->hash & (cap - 1);
		while (n[j])
			j = (j + 1) & (cap - 1);
		n[j] = u;
	}
	free(s->set);
	s->set = n;
	s->set_cap = cap;
	return 0;
}

static bool heap_before(const struct sched_url *a, const struct sched_url *b)
{
	if (a->priority != b->priority)
		return a->priority > b->priority;
	return a->seq < b->seq;
}

static int heap_push(struct scheduler *s, struct sched_url *u)
{
	if (s->heap_n == s->heap_cap) {
		size_t cap = s->heap_cap ? s->heap_cap * 2 : 1024;
		struct sched_url **n = reallocarray(s->heap, cap, sizeof(*n));
		if (!n)
			return -ENOMEM;
		s->heap = n;
		s->heap_cap = cap;
	}
	size_t i = s->heap_n++;
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!heap_before(u, s->heap[parent]))
			break;
		s->heap[i] = s->heap[parent];
		i = parent;
	}
	s->heap[i] = u;
	return 0;
}

static struct sched_url *heap_pop(struct scheduler *s)
{
	if (s->heap_n == 0)
		return NULL;
	struct sched_url *top = s->heap[0];
	struct sched_url *last = s->heap[--s->heap_n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= s->heap_n)
			break;
		if (c + 1 < s->heap_n && heap_before(s->heap[c + 1], s->heap[c]))
			c++;
		if (!heap_before(s->heap[c], last))
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	if (s->heap_n > 0)
		s->heap[i] = last;
	return top;
}

static struct sched_url **set_find(const struct scheduler *s, const char *url, const char *client,
                                   uint32_t time, uint32_t h)
{
	size_t j = h & (s->set_cap - 1);
	for (; s->set[j]; j = (j + 1) & (s->set_cap - 1)) {
		struct sched_url *o = s->set[j];
		if (o->hash == h && o->time == time && strcmp(o->url, url) == 0 &&
		    strcmp(o->client, client) == 0)
			break;
	}
	return &s->set[j];
}

int sched_requeue(struct scheduler *s, const struct sched_url *u)
{
	/* the URL stays in the duplicate set for the run: only the heap lost it */
	return heap_push(s, (struct sched_url *)u);
}

bool sched_contains(const struct scheduler *s, const char *url, const char *client,
                    uint32_t time)
{
	return *set_find(s, url, client, time, url_hash(url, client, time)) != NULL;
}

int sched_add(struct scheduler *s, uint64_t id, const char *url, const char *client,
              uint32_t time, double priority)
{
	if (!url || !*url || !client || !(priority >= 0.0 && priority <= 1.0))
		return -EINVAL;
	uint32_t h = url_hash(url, client, time);
	struct sched_url **slot = set_find(s, url, client, time, h);
	if (*slot)
		return -EEXIST;
	size_t lu = strlen(url), lc = strlen(client);
	struct sched_url *u = malloc(sizeof(*u) + lu + lc + 2);
	if (!u)
		return -ENOMEM;
	*u = (struct sched_url){.id = id, .seq = s->next_seq++, .priority = priority,
	                        .time = time, .hash = h};
	memcpy(u->url, url, lu + 1);
	memcpy(u->url + lu + 1, client, lc + 1);
	u->client = u->url + lu + 1;
	int r = heap_push(s, u);
	if (r < 0) {
		free(u);
		return r;
	}
	*slot = u;
	s->set_n++;
	if (s->set_n * 2 > s->set_cap)
		(void)set_grow(s); /* a failed grow only makes the probes longer */
	return 0;
}

static int dq_push_front(struct scheduler *s, struct sched_group *g)
{
	if (s->dq_n == s->dq_cap) {
		size_t cap = s->dq_cap ? s->dq_cap * 2 : 16;
		struct sched_group **n = calloc(cap, sizeof(*n));
		if (!n)
			return -ENOMEM;
		for (size_t i = 0; i < s->dq_n; i++)
			n[i] = s->dq[(s->dq_head + i) % s->dq_cap];
		free(s->dq);
		s->dq = n;
		s->dq_cap = cap;
		s->dq_head = 0;
	}
	s->dq_head = (s->dq_head + s->dq_cap - 1) % s->dq_cap;
	s->dq[s->dq_head] = g;
	s->dq_n++;
	return 0;
}

int sched_next_group(struct scheduler *s, struct sched_group **ret)
{
	if (s->dq_n > 0) {
		struct sched_group *g = s->dq[s->dq_head];
		s->dq_head = (s->dq_head + 1) % s->dq_cap;
		s->dq_n--;
		g->id = s->next_group_id++;
		s->running++;
		*ret = g;
		return 0;
	}
	if (s->heap_n == 0)
		return -EAGAIN;
	uint32_t n = (uint32_t)MIN((size_t)s->p.group_size, s->heap_n);
	struct sched_group *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->urls = calloc(n, sizeof(*g->urls));
	if (!g->urls) {
		free(g);
		return -ENOMEM;
	}
	/* A group is visited by one program with one visit time (the visitor
	 * runs one application per group), so only URLs with the first one's
	 * client and time join it; the others met on the way go back to the
	 * heap.  The look-ahead is bounded (4 x group size) so that a mixed
	 * list costs O(group_size log n) per group.  The original took program
	 * and time from the first URL and only warned (reference §5). */
	g->urls[0] = heap_pop(s);
	uint32_t k = 1;
	struct sched_url *aside[256];
	size_t n_aside = 0;
	size_t budget = MIN((size_t)n * 4, ELEMENTSOF(aside));
	while (k < n && s->heap_n > 0 && n_aside < budget) {
		struct sched_url *u = heap_pop(s);
		if (u->time == g->urls[0]->time && strcmp(u->client, g->urls[0]->client) == 0)
			g->urls[k++] = u;
		else
			aside[n_aside++] = u;
	}
	for (size_t i = 0; i < n_aside; i++)
		(void)heap_push(s, aside[i]); /* capacity is there: they were just popped */
	g->n = k;
	g->id = s->next_group_id++;
	s->running++;
	*ret = g;
	return 0;
}

static struct sched_group *group_slice(const struct sched_group *g, uint32_t from, uint32_t n,
                                       uint32_t attempt)
{
	struct sched_group *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->urls = calloc(n, sizeof(*h->urls));
	if (!h->urls) {
		free(h);
		return NULL;
	}
	memcpy(h->urls, g->urls + from, n * sizeof(*h->urls));
	h->n = n;
	h->attempt = attempt;
	return h;
}

static void finish_all(struct scheduler *s, const struct sched_group *g, enum sched_verdict v,
                       uint32_t err)
{
	for (uint32_t i = 0; i < g->n; i++)
		s->final_fn(s->userdata, g->urls[i], v, err);
}

/* DAC: both halves to the front, second half first so the first half is
 * visited next (the original's LIFO order).  A failed allocation ends the
 * group's URLs as errors rather than losing them. */
static void dac_split(struct scheduler *s, const struct sched_group *g)
{
	uint32_t half = g->n / 2;
	struct sched_group *a = group_slice(g, 0, half, 0);
	struct sched_group *b = group_slice(g, half, g->n - half, 0);
	if (!a || !b || dq_push_front(s, b) < 0) {
		group_free(a);
		group_free(b);
		finish_all(s, g, VERDICT_ERROR, 0);
		return;
	}
	if (dq_push_front(s, a) < 0) {
		group_free(a);
		/* b is queued; end only a's URLs */
		for (uint32_t i = 0; i < half; i++)
			s->final_fn(s->userdata, g->urls[i], VERDICT_ERROR, 0);
	}
}

void sched_group_done(struct scheduler *s, struct sched_group *g, enum sched_verdict verdict,
                      const bool *item_malicious, bool malicious, uint32_t err)
{
	s->running--;
	bool dac = s->p.algorithm == SCHED_DAC && g->n > 1;
	if (verdict == VERDICT_MALICIOUS && dac) {
		dac_split(s, g);
	} else if (verdict == VERDICT_ERROR && dac && malicious) {
		dac_split(s, g);
	} else if (verdict == VERDICT_ERROR && malicious) {
		/* the original (since 2.1): a client that fails after reporting
		 * state changes still classifies its URLs malicious */
		finish_all(s, g, VERDICT_MALICIOUS, 0);
	} else if (verdict == VERDICT_ERROR && g->attempt == 0) {
		struct sched_group *r = group_slice(g, 0, g->n, 1);
		if (!r || dq_push_front(s, r) < 0) {
			group_free(r);
			finish_all(s, g, VERDICT_ERROR, err);
		}
	} else if (verdict != VERDICT_ERROR && s->p.algorithm == SCHED_BULK && item_malicious) {
		for (uint32_t i = 0; i < g->n; i++)
			s->final_fn(s->userdata, g->urls[i],
			            item_malicious[i] ? VERDICT_MALICIOUS : VERDICT_BENIGN, 0);
	} else {
		finish_all(s, g, verdict, verdict == VERDICT_ERROR ? err : 0);
	}
	group_free(g);
}

void sched_bulk_done(struct scheduler *s, struct sched_group *g, const enum sched_item *items)
{
	s->running--;
	uint32_t n = 0;
	for (uint32_t i = 0; i < g->n; i++)
		n += items[i] == SCHED_ITEM_UNDECIDED;
	struct sched_group *u = NULL;
	if (n > 0 && (u = calloc(1, sizeof(*u))) && (u->urls = calloc(n, sizeof(*u->urls)))) {
		for (uint32_t i = 0; i < g->n; i++)
			if (items[i] == SCHED_ITEM_UNDECIDED)
				u->urls[u->n++] = g->urls[i];
	}
	for (uint32_t i = 0; i < g->n; i++) {
		if (items[i] == SCHED_ITEM_UNDECIDED && u && u->urls)
			continue;
		/* decided, or no memory to visit it again: an undecided item is
		 * then malicious, as every URL of the group was before */
		s->final_fn(s->userdata, g->urls[i],
		            items[i] == SCHED_ITEM_BENIGN ? VERDICT_BENIGN : VERDICT_MALICIOUS, 0);
	}
	if (u && u->urls) {
		if (u->n > 1) {
			dac_split(s, u);
			group_free(u);
		} else if (dq_push_front(s, u) < 0) {
			finish_all(s, u, VERDICT_MALICIOUS, 0);
			group_free(u);
		}
	} else {
		group_free(u);
	}
	group_free(g);
}

size_t sched_queued(const struct scheduler *s)
{
	return s->heap_n;
}

size_t sched_pending_groups(const struct scheduler *s)
{
	return s->dq_n;
}

size_t sched_running(const struct scheduler *s)
{
	return s->running;
}

bool sched_idle(const struct scheduler *s)
{
	return s->heap_n == 0 && s->dq_n == 0 && s->running == 0;
}


/* One row per allowed (state, event); everything else is a protocol error. */
static const struct {
	enum client_state from;
	enum client_event ev;
	enum client_state to;
} transitions[] = {
	{CLIENT_CONNECTING, CEV_CONNECT, CLIENT_CONNECTED},
	{CLIENT_CONNECTED, CEV_OPTIONS_SENT, CLIENT_WAITING},
	{CLIENT_WAITING, CEV_GROUP_SENT, CLIENT_AWAITING_VISITING},
	{CLIENT_AWAITING_VISITING, CEV_START, CLIENT_VISITING},
	{CLIENT_AWAITING_VISITING, CEV_ERROR_RETRY, CLIENT_WAITING},
	{CLIENT_AWAITING_VISITING, CEV_ERROR_REVERT, CLIENT_DISCONNECTED},
	{CLIENT_VISITING, CEV_FINISH_BENIGN, CLIENT_WAITING},
	{CLIENT_VISITING, CEV_FINISH_MALICIOUS, CLIENT_DISCONNECTED},
	{CLIENT_VISITING, CEV_ERROR_RETRY, CLIENT_WAITING},
	{CLIENT_VISITING, CEV_ERROR_REVERT, CLIENT_DISCONNECTED},
	{CLIENT_DISCONNECTED, CEV_ACCEPTED, CLIENT_CONNECTING},
};

int sched_client_next(enum client_state st, enum client_event ev, enum client_state *ret)
{
	if (ev == CEV_CLOSED) {
		*ret = CLIENT_DISCONNECTED;
		return 0;
	}
	for (size_t i = 0; i < ELEMENTSOF(transitions); i++)
		if (transitions[i].from == st && transitions[i].ev == ev) {
			*ret = transitions[i].to;
			return 0;
		}
	return -EINVAL;
}

const char *client_state_to_string(enum client_state st)
{
	static const char *const names[] = {"CONNECTING", "CONNECTED",  "WAITING",
	                                    "AWAITING_VISITING", "VISITING", "DISCONNECTED"};
	return (size_t)st < ELEMENTSOF(names) ? names[st] : "?";
}
