/* scheduler.h - URL queue, groups and the seq / bulk / dac algorithms.
 *
 * Owns every queued URL and every group handed to a client, and nothing
 * else: no sockets, no files, no clock.  The listener feeds it results and
 * it reports each URL's one final verdict through a callback, so the whole
 * algorithm (priorities, O(1) duplicate check, DAC split-to-front, retry
 * once) is pure code that unit tests drive directly.
 *
 * Memory: a URL is one heap allocation (the struct with its strings inline),
 * the queue a binary heap of pointers, the duplicate check an open-addressing
 * hash set of pointers (load <= 1/2).  Priority ties leave in arrival order.
 *
 * Client state machine (the original's, Client.java): see sched_client_next().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sched_algorithm { SCHED_SEQ, SCHED_BULK, SCHED_DAC };

enum sched_verdict { VERDICT_BENIGN, VERDICT_MALICIOUS, VERDICT_ERROR };

struct sched_url {
	uint64_t id;      /* store id, or any caller-chosen number */
	uint64_t seq;     /* arrival order, for priority ties */
	double priority;  /* 0.0-1.0, higher first */
	uint32_t time;    /* visit time in seconds */
	uint32_t hash;
	const char *client; /* points into data[] */
	char url[];       /* url NUL client NUL */
};

struct sched_group {
	uint32_t id;      /* the visit-event identifier, unique per run */
	uint32_t n;
	uint32_t attempt; /* 0 first visit, 1 the retry */
	struct sched_url **urls;
};

struct sched_params {
	enum sched_algorithm algorithm;
	uint32_t group_size;
};

/* Called once per URL when it reaches its final state; err is the major
 * error code for VERDICT_ERROR, 0 otherwise. */
typedef void (*sched_final_fn)(void *userdata, const struct sched_url *u,
                               enum sched_verdict v, uint32_t err);

struct scheduler;

/* Creates an empty scheduler. Returns 0 or -ENOMEM / -EINVAL. */
int sched_new(const struct sched_params *p, sched_final_fn fn, void *userdata,
              struct scheduler **ret);
/* Frees the scheduler, its queued URLs and its groups; NULL is a no-op. */
void sched_free(struct scheduler *s);

/* Queues a URL. Returns 0, -EEXIST for a duplicate (same url, client and
 * time, O(1)), -EINVAL for an empty url or a priority outside 0..1. */
int sched_add(struct scheduler *s, uint64_t id, const char *url, const char *client,
              uint32_t time, double priority);

/* Queues again a URL whose final verdict was reported (final_fn) but
 * could not be recorded (the store's transaction failed): it is visited
 * again.  u must be one the scheduler handed to final_fn.  0 or -ENOMEM. */
int sched_requeue(struct scheduler *s, const struct sched_url *u);

/* True if the same url, client and time was ever added (O(1)). */
bool sched_contains(const struct scheduler *s, const char *url, const char *client,
                    uint32_t time);

/* Hands out the next group: a split or retried group from the front of the
 * deque first, else up to group_size URLs by priority. -EAGAIN when empty.
 * The group stays owned by the scheduler until sched_group_done(). */
int sched_next_group(struct scheduler *s, struct sched_group **ret);

/* Reports a group's result.  verdict is the whole group's classification;
 * for bulk, item_malicious[i] gives item i's own classification (NULL = all
 * as verdict).  VERDICT_ERROR with a retryable err re-queues the group once
 * (to the front, new id), then reports its URLs as errors; a malicious
 * ERROR group in dac is split like a malicious one (pass malicious=true);
 * in seq and bulk (or a dac group of one) it ends malicious, not retried,
 * as in the original since 2.1.  Frees the group. */
void sched_group_done(struct scheduler *s, struct sched_group *g, enum sched_verdict verdict,
                      const bool *item_malicious, bool malicious, uint32_t err);

/* A bulk group's items, each decided or not. */
enum sched_item { SCHED_ITEM_BENIGN, SCHED_ITEM_MALICIOUS, SCHED_ITEM_UNDECIDED };
/* Reports a completed bulk visit item by item: benign and malicious items
 * are final; the undecided ones (an unauthorized event no item could be
 * tied to) are visited again as dac would: one alone, more split in halves
 * to the front of the queue.  Frees the group. */
void sched_bulk_done(struct scheduler *s, struct sched_group *g, const enum sched_item *items);

/* URLs queued (not in a group), groups waiting in the deque, groups handed out. */
size_t sched_queued(const struct scheduler *s);
size_t sched_pending_groups(const struct scheduler *s);
size_t sched_running(const struct scheduler *s);
/* True when nothing is queued, waiting or running. */
bool sched_idle(const struct scheduler *s);

/* Parses "seq"/"bulk"/"dac"; returns 0 or -EINVAL. */
int sched_algorithm_from_string(const char *s, enum sched_algorithm *ret);
const char *sched_algorithm_to_string(enum sched_algorithm a);

/* Client states and events (Client.java). */
enum client_state {
	CLIENT_CONNECTING,
	CLIENT_CONNECTED,
	CLIENT_WAITING,
	CLIENT_AWAITING_VISITING,
	CLIENT_VISITING,
	CLIENT_DISCONNECTED,
};

enum client_event {
	CEV_ACCEPTED,   /* TCP accepted, connect sent */
	CEV_CONNECT,    /* client's connect / reconnect received */
	CEV_OPTIONS_SENT,
	CEV_GROUP_SENT, /* visit-event sent */
	CEV_START,      /* visit-event type=start */
	CEV_FINISH_BENIGN,
	CEV_FINISH_MALICIOUS,
	CEV_ERROR_RETRY, /* error code that counts as a completed visit */
	CEV_ERROR_REVERT,
	CEV_CLOSED,     /* socket closed, inactivity, stall, garbage */
};

/* The transition table: returns 0 and the next state, or -EINVAL for an
 * event that is not allowed in that state (a protocol violation). */
int sched_client_next(enum client_state st, enum client_event ev, enum client_state *ret);
const char *client_state_to_string(enum client_state st);
