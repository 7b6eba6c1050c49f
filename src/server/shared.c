/* shared.c - one run shared by several servers on one PostgreSQL store.
 *
 * With a shared store the run's queue lives in the database, not in one
 * server's memory: the server that reads the list only adds its URLs to the
 * store, and every server (that one included) fills its scheduler by
 * claiming URLs (store_url_claim: FOR UPDATE SKIP LOCKED, so two servers
 * never claim one URL at once) under a lease that it renews every third of
 * its length.  A server that dies stops renewing; once its leases expire,
 * the other servers claim its URLs.  A URL's final status is set once
 * (store_url_final is conditional), so even a URL visited twice (its lease
 * expired under a stalled server) is final once and written to one server's
 * logs.  A server that stops on a signal gives its unfinished URLs back at
 * once; one started again under the same server id takes back what it held.
 *
 * Claims are sized to keep the scheduler a little ahead of its clients
 * (two groups per connected client), so that the URLs of a run spread over
 * the servers that have clients to visit them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "scheduler.h"
#include "server-internal.h"
#include "store.h"

#define SHARED_CLAIM_MAX  4096u /* URLs per claim */
#define SHARED_IDLE_RETRY 1.0	/* s between claims that found nothing */
#define SHARED_DONE_CHECK 1.0	/* s between checks whether the run is over */

static int claimed_one(void *ud, int64_t id, const char *url, const char *client, uint32_t time,
		       double priority)
{
	struct srv *s = ud;
	int r = sched_add(s->sched, (uint64_t)id, url, client, time, priority);
	if (r == -EEXIST)
		return 0; /* still held from before (a lease renewed too late) */
	if (r == 0)
		s->sum.claimed++;
	return r;
}

int srv_shared_start(struct srv *s)
{
	if (s->o->server_id && s->o->server_id[0])
		snprintf(s->owner, sizeof(s->owner), "%s", s->o->server_id);
	else {
		char host[64] = "";
		if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
			snprintf(host, sizeof(host), "localhost");
		snprintf(s->owner, sizeof(s->owner), "%s:%u", host, s->o->port);
	}
	int r = store_set_owner(s->store, s->owner);
	if (r < 0)
		return log_error_errno(r, "store: server id %s", s->owner);
	/* what this server id held when it stopped or was killed: its own again */
	r = store_lease_release(s->store, s->op, s->owner);
	if (r < 0)
		return log_error_errno(r, "store: cannot take back the URLs of %s", s->owner);
	log_info("shared run %lld as server \"%s\" (lease %u s)", (long long)s->op, s->owner,
		 s->lease_seconds);
	if (r > 0)
		log_info("%d URLs this server held before are back in the queue", r);
	return 0;
}

/* Keeps two groups per connected client (at least two groups) queued. */
void srv_shared_claim(struct srv *s, double now)
{
	if (!s->shared || s->stop)
		return;
	size_t per = s->cfg->algorithm == SCHED_SEQ ? 1 : MAX(s->cfg->group_size, 1u);
	size_t want = 2 * per * MAX(s->n_clients, 1u);
	want = MIN(want, (size_t)SHARED_CLAIM_MAX);
	size_t have = sched_queued(s->sched);
	if (have * 2 > want || (s->claim_idle && now - s->last_claim < SHARED_IDLE_RETRY))
		return;
	s->last_claim = now;
	int r = store_url_claim(s->store, s->op, s->owner, (uint32_t)(want - have),
				s->lease_seconds, claimed_one, s);
	if (r < 0) {
		log_warnx("store: claim failed: %s", strerror(-r));
		s->claim_idle = true;
		/* out of memory while queueing them: URLs claimed but not queued
		 * here would be renewed and never visited, so all go back (those
		 * still queued here may then be visited twice; their final status
		 * is still set once).  A failed statement claimed nothing. */
		if (r == -ENOMEM && store_lease_release(s->store, s->op, s->owner) < 0)
			log_warnx("store: cannot give back the URLs of %s", s->owner);
		return;
	}
	s->claim_idle = r == 0;
}

void srv_shared_tick(struct srv *s, double now)
{
	if (!s->shared)
		return;
	if (s->store->reconnects != s->reconnects_seen) {
		s->reconnects_seen = s->store->reconnects;
		log_warnx("store: the connection to the database broke and was made again (%u "
			  "times in all); verdicts it lost are visited again",
			  s->reconnects_seen);
	}
	if (now - s->last_renew < (double)s->lease_seconds / 3.0)
		return;
	s->last_renew = now;
	int r = store_lease_renew(s->store, s->owner, s->lease_seconds);
	if (r < 0)
		log_warnx("store: cannot renew the leases of %s: %s", s->owner, strerror(-r));
}

bool srv_shared_run_done(struct srv *s, double now)
{
	if (now - s->last_done_check < SHARED_DONE_CHECK)
		return false;
	s->last_done_check = now;
	struct store_input in = {0};
	int64_t left = 0;
	int r = store_input_get(s->store, s->op, &in);
	free(in.path);
	if (r < 0 || !in.done)
		return false; /* the list is still being read (by this or another server) */
	r = store_count(s->store, s->op, 0, &left);
	return r >= 0 && left == 0;
}

void srv_shared_stop(struct srv *s)
{
	if (!s->shared || !s->store || !s->owner[0])
		return;
	int r = store_lease_release(s->store, s->op, s->owner);
	if (r > 0)
		log_info("gave %d unfinished URLs back to the shared queue", r);
	else if (r < 0)
		log_warnx("store: cannot give back the URLs of %s: %s", s->owner, strerror(-r));
}
