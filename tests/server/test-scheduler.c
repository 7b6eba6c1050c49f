/* test-scheduler.c - unit tests for the queue, DAC split, bulk, retry and
 * the client state machine (src/server/scheduler.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server/scheduler.h"

#define MAXU 64

struct results {
	int verdict[MAXU]; /* -1 none */
	int count[MAXU];
	uint32_t err[MAXU];
};

static void on_final(void *ud, const struct sched_url *u, enum sched_verdict v, uint32_t err)
{
	struct results *r = ud;
	assert_true(u->id < MAXU);
	r->verdict[u->id] = (int)v;
	r->count[u->id]++;
	r->err[u->id] = err;
}

static struct scheduler *mk(enum sched_algorithm a, uint32_t gs, struct results *r)
{
	struct scheduler *s = NULL;
	struct sched_params p = {.algorithm = a, .group_size = gs};
	memset(r, 0, sizeof(*r));
	for (int i = 0; i < MAXU; i++)
		r->verdict[i] = -1;
	assert_int_equal(sched_new(&p, on_final, r, &s), 0);
	return s;
}

static void add_n(struct scheduler *s, int n)
{
	char url[64];
	for (int i = 0; i < n; i++) {
		snprintf(url, sizeof(url), "http://example.test/%d", i);
		assert_int_equal(sched_add(s, (uint64_t)i, url, "firefox", 10, 0.5), 0);
	}
}

static bool group_has(const struct sched_group *g, uint64_t id)
{
	for (uint32_t i = 0; i < g->n; i++)
		if (g->urls[i]->id == id)
			return true;
	return false;
}

/* Plays a client that finds URL `bad` malicious; returns the visit count. */
static int run_dac(struct scheduler *s, uint64_t bad)
{
	struct sched_group *g;
	int visits = 0;
	while (sched_next_group(s, &g) == 0) {
		visits++;
		bool m = group_has(g, bad);
		sched_group_done(s, g, m ? VERDICT_MALICIOUS : VERDICT_BENIGN, NULL, false, 0);
	}
	return visits;
}

static void test_dac_one_in_twenty(void **state)
{
	struct results r;
	for (uint64_t bad = 0; bad < 20; bad++) {
		struct scheduler *s = mk(SCHED_DAC, 20, &r);
		add_n(s, 20);
		int visits = run_dac(s, bad);
		assert_true(visits <= 11);
		assert_true(sched_idle(s));
		for (int i = 0; i < 20; i++) {
			assert_int_equal(r.count[i], 1);
			assert_int_equal(r.verdict[i],
			                 (uint64_t)i == bad ? VERDICT_MALICIOUS : VERDICT_BENIGN);
		}
		sched_free(s);
	}
}

static void test_dac_split_to_front(void **state)
{
	struct results r;
	struct scheduler *s = mk(SCHED_DAC, 4, &r);
	add_n(s, 8);
	struct sched_group *g;
	assert_int_equal(sched_next_group(s, &g), 0);
	assert_int_equal(g->n, 4);
	uint32_t id = g->id;
	sched_group_done(s, g, VERDICT_MALICIOUS, NULL, false, 0);
	assert_int_equal(sched_pending_groups(s), 2);
	/* the first half comes next, ahead of the 4 queued URLs, with a new id */
	assert_int_equal(sched_next_group(s, &g), 0);
	assert_int_equal(g->n, 2);
	assert_true(g->id != id);
	assert_true(group_has(g, 0) && group_has(g, 1));
	sched_group_done(s, g, VERDICT_BENIGN, NULL, false, 0);
	assert_int_equal(r.verdict[0], VERDICT_BENIGN);
	assert_int_equal(sched_next_group(s, &g), 0);
	assert_true(group_has(g, 2) && group_has(g, 3));
	sched_group_done(s, g, VERDICT_BENIGN, NULL, false, 0);
	assert_int_equal(sched_queued(s), 4);
	sched_free(s);
}

static void test_bulk_per_item(void **state)
{
	struct results r;
	struct scheduler *s = mk(SCHED_BULK, 5, &r);
	add_n(s, 5);
	struct sched_group *g;
	assert_int_equal(sched_next_group(s, &g), 0);
	bool items[5];
	for (uint32_t i = 0; i < g->n; i++)
		items[i] = g->urls[i]->id % 2 == 1;
	sched_group_done(s, g, VERDICT_MALICIOUS, items, false, 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(r.verdict[i], i % 2 ? VERDICT_MALICIOUS : VERDICT_BENIGN);
	assert_int_equal(sched_next_group(s, &g), -EAGAIN);
	assert_true(sched_idle(s));
	sched_free(s);
}

/* Bulk with undecided items (an event no item could be tied to): the
 * decided ones are final, the undecided ones come back split in halves. */
static void test_bulk_undecided(void **state)
{
	struct results r;
	struct scheduler *s = mk(SCHED_BULK, 10, &r);
	add_n(s, 10);
	struct sched_group *g;
	assert_int_equal(sched_next_group(s, &g), 0);
	enum sched_item items[10];
	for (uint32_t i = 0; i < g->n; i++) {
		uint64_t id = g->urls[i]->id;
		items[i] = id == 1 ? SCHED_ITEM_MALICIOUS
		           : id == 2 || id == 5 || id == 7 ? SCHED_ITEM_UNDECIDED
		                                           : SCHED_ITEM_BENIGN;
	}
	sched_bulk_done(s, g, items);
	assert_int_equal(r.verdict[1], VERDICT_MALICIOUS);
	for (int i = 0; i < 10; i++)
		assert_int_equal(r.count[i], i == 2 || i == 5 || i == 7 ? 0 : 1);
	/* three undecided: a half of one, then a half of two */
	assert_int_equal(sched_next_group(s, &g), 0);
	assert_int_equal(g->n, 1);
	assert_true(group_has(g, 2));
	enum sched_item one[1] = {SCHED_ITEM_BENIGN};
	sched_bulk_done(s, g, one);
	assert_int_equal(sched_next_group(s, &g), 0);
	assert_int_equal(g->n, 2);
	assert_true(group_has(g, 5) && group_has(g, 7));
	enum sched_item two[2] = {SCHED_ITEM_MALICIOUS, SCHED_ITEM_BENIGN};
	sched_bulk_done(s, g, two);
	for (int i = 0; i < 10; i++)
		assert_int_equal(r.count[i], 1);
	assert_int_equal(r.verdict[2], VERDICT_BENIGN);
	assert_int_equal(sched_next_group(s, &g), -EAGAIN);
	assert_true(sched_idle(s));
	sched_free(s);
}

static void test_retry_once(void **state)
{
	struct results r;
	struct scheduler *s = mk(SCHED_SEQ, 3, &r);
	add_n(s, 3);
	struct sched_group *g;
	assert_int_equal(sched_next_group(s, &g), 0);
	sched_group_done(s, g, VERDICT_ERROR, NULL, false, 0x10000111u);
	assert_int_equal(r.count[0], 0);
	assert_int_equal(sched_next_group(s, &g), 0);
	assert_int_equal(g->attempt, 1);
	assert_int_equal(g->n, 3);
	sched_group_done(s, g, VERDICT_ERROR, NULL, false, 0x10004000u);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(r.verdict[i], VERDICT_ERROR);
		assert_int_equal(r.err[i], 0x10004000u);
		assert_int_equal(r.count[i], 1);
	}
	assert_true(sched_idle(s));
	sched_free(s);
}

/* A verdict the store could not record: the URL is queued again, visited
 * again and gets its verdict again (the server's srv_requeue_finals). */
static void test_requeue(void **state)
{
	struct results r;
	struct scheduler *s = mk(SCHED_DAC, 2, &r);
	add_n(s, 2);
	struct sched_group *g;
	assert_int_equal(sched_next_group(s, &g), 0);
	const struct sched_url *u0 = g->urls[0], *u1 = g->urls[1];
	sched_group_done(s, g, VERDICT_BENIGN, NULL, false, 0);
	assert_int_equal(r.count[0], 1);
	assert_true(sched_idle(s));
	assert_int_equal(sched_requeue(s, u0), 0);
	assert_int_equal(sched_requeue(s, u1), 0);
	assert_false(sched_idle(s));
	assert_int_equal(sched_queued(s), 2);
	assert_int_equal(sched_next_group(s, &g), 0);
	assert_int_equal(g->n, 2);
	sched_group_done(s, g, VERDICT_BENIGN, NULL, false, 0);
	assert_int_equal(r.count[0], 2);
	assert_int_equal(r.count[1], 2);
	assert_true(sched_idle(s));
	/* still a duplicate for the run */
	assert_int_equal(sched_add(s, 7, "http://example.test/0", "firefox", 10, 0.5), -EEXIST);
	sched_free(s);
}

/* A client that fails after reporting events: malicious, not retried (seq). */
static void test_error_after_events(void **state)
{
	struct results r;
	struct scheduler *s = mk(SCHED_SEQ, 2, &r);
	add_n(s, 2);
	struct sched_group *g;
	assert_int_equal(sched_next_group(s, &g), 0);
	sched_group_done(s, g, VERDICT_ERROR, NULL, true, 0x10004200u);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(r.verdict[i], VERDICT_MALICIOUS);
		assert_int_equal(r.count[i], 1);
	}
	assert_int_equal(sched_next_group(s, &g), -EAGAIN);
	assert_true(sched_idle(s));
	sched_free(s);
}

static void test_priority_and_dups(void **state)
{
	struct results r;
	struct scheduler *s = mk(SCHED_SEQ, 1, &r);
	assert_int_equal(sched_add(s, 1, "http://a/", "ff", 10, 0.1), 0);
	assert_int_equal(sched_add(s, 2, "http://b/", "ff", 10, 0.9), 0);
	assert_int_equal(sched_add(s, 3, "http://c/", "ff", 10, 0.1), 0);
	assert_int_equal(sched_add(s, 4, "http://a/", "ff", 10, 0.5), -EEXIST);
	assert_true(sched_contains(s, "http://a/", "ff", 10));
	assert_false(sched_contains(s, "http://a/", "ff", 12));
	assert_int_equal(sched_add(s, 5, "http://a/", "ff", 11, 0.5), 0);
	assert_int_equal(sched_add(s, 6, "http://A/", "ff", 10, 0.5), 0); /* case kept */
	assert_int_equal(sched_add(s, 7, "", "ff", 10, 0.5), -EINVAL);
	assert_int_equal(sched_add(s, 8, "http://x/", "ff", 10, 1.5), -EINVAL);
	uint64_t order[5];
	struct sched_group *g;
	for (int i = 0; i < 5; i++) {
		assert_int_equal(sched_next_group(s, &g), 0);
		order[i] = g->urls[0]->id;
		sched_group_done(s, g, VERDICT_BENIGN, NULL, false, 0);
	}
	assert_int_equal(order[0], 2);
	assert_int_equal(order[3], 1); /* ties in arrival order */
	assert_int_equal(order[4], 3);
	sched_free(s);
}

static void test_many_dups(void **state)
{
	struct results r;
	struct scheduler *s = mk(SCHED_SEQ, 50, &r);
	char url[64];
	for (int i = 0; i < 20000; i++) {
		snprintf(url, sizeof(url), "http://h%d.test/", i);
		assert_int_equal(sched_add(s, 0, url, "c", 1, 0), 0);
	}
	for (int i = 0; i < 20000; i += 7) {
		snprintf(url, sizeof(url), "http://h%d.test/", i);
		assert_int_equal(sched_add(s, 0, url, "c", 1, 0), -EEXIST);
	}
	assert_int_equal(sched_queued(s), 20000);
	sched_free(s);
}

static void test_state_machine(void **state)
{
	enum client_state st = CLIENT_CONNECTING;
	static const enum client_event ok[] = {CEV_CONNECT, CEV_OPTIONS_SENT, CEV_GROUP_SENT,
	                                       CEV_START, CEV_FINISH_BENIGN, CEV_GROUP_SENT,
	                                       CEV_START, CEV_FINISH_MALICIOUS};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_int_equal(sched_client_next(st, ok[i], &st), 0);
	assert_int_equal(st, CLIENT_DISCONNECTED);
	enum client_state x = CLIENT_WAITING;
	assert_int_equal(sched_client_next(x, CEV_START, &x), -EINVAL);
	assert_int_equal(x, CLIENT_WAITING);
	assert_int_equal(sched_client_next(CLIENT_VISITING, CEV_CLOSED, &x), 0);
	assert_int_equal(x, CLIENT_DISCONNECTED);
	enum sched_algorithm a;
	assert_int_equal(sched_algorithm_from_string("bulk", &a), 0);
	assert_int_equal(a, SCHED_BULK);
	assert_int_equal(sched_algorithm_from_string("BULK", &a), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dac_one_in_twenty), cmocka_unit_test(test_dac_split_to_front),
		cmocka_unit_test(test_bulk_per_item),     cmocka_unit_test(test_retry_once),
		cmocka_unit_test(test_bulk_undecided),
		cmocka_unit_test(test_error_after_events),
		cmocka_unit_test(test_priority_and_dups), cmocka_unit_test(test_many_dups),
		cmocka_unit_test(test_state_machine),     cmocka_unit_test(test_requeue),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
