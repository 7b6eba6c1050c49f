/* server-internal.h - state shared by server.c, clients.c and the vm-server
 * backends; not part of the server's public interface.
 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "frame.h"
#include "tls.h"
#include "server.h"
#include "scheduler.h"
#include "urllist.h"

struct output;
struct scheduler;
struct sched_group;
struct store;
struct srv_exclusions;

enum srv_watch_kind { W_LISTEN, W_SIGNAL, W_TIMER, W_INPUT, W_CLIENT, W_CHILD };

/* What epoll's data.ptr points at. */
struct srv_watch {
	enum srv_watch_kind kind;
	void *p;
};

#define SRV_MAX_EVENTS 4096   /* event lines kept per visit */
#define SRV_MAX_PROCS 4096    /* process-tree entries per visit (bulk) */
#define SRV_MAX_EVIDENCE 16   /* uploads per visit */
#define SRV_MAX_UPLOAD (256u << 20)
#define SRV_MAX_PENDING_REVERTS 256 /* reverts awaiting a reconnect (stats) */
#define SRV_RECONNECT_GRACE 15.0 /* s a client that lost its socket during a visit may take to
                                  * send reconnect (the original client: 10 tries 1 s apart) */

struct srv_client {
	struct srv_watch w;
	struct srv_client *next;
	int fd;
	unsigned serial;
	unsigned child;   /* the backend's child number (vmserver_client_connected), 0 = none */
	int state;        /* enum client_state */
	bool dead;
	char name[80];    /* "vmserverid:vmid", or "#serial" before connect */
	char peer[64];    /* "address:port" */
	char label[160];  /* for log lines: "name (peer)" */
	/* mutual TLS (tls-dir): connect is sent once the handshake is done;
	 * cert_name is the verified host name, which must equal the vm-server-id */
	SSL *ssl;
	bool tls_done;
	double accepted_at;
	char cert_name[TLS_NAME_MAX];
	double orphan_until;  /* socket lost during a visit: waits for reconnect until then */
	size_t pending_in;    /* bytes of an unfinished message in fr */
	double partial_since; /* when that message began arriving (0: none) */
	struct cap_framer fr;
	struct cap_buf out;
	double last_contact, group_sent, last_ping;
	double visit_started; /* wall clock */
	struct sched_group *group;
	bool malicious;   /* a system-event was seen during this visit */
	/* this visit's events (quoted CSV lines) and pids, for logs and bulk */
	char **ev_lines;
	pid_t *ev_pids;
	size_t n_ev;
	pid_t (*procs)[2]; /* {child, parent} from process "created" events */
	size_t n_procs;
	char *evidence[SRV_MAX_EVIDENCE];
	size_t n_evidence;
	/* the upload in progress */
	int up_fd;
	uint64_t up_size, up_got;
	uint64_t up_total;    /* bytes accepted for uploads during this visit */
	char *up_rel, *up_abs;
};

#define SRV_HOST_NAME 80

/* Per host of clients (hosts.c). */
struct srv_host {
	char name[SRV_HOST_NAME]; /* certificate name, else address */
	unsigned clients;         /* connected now (recounted when reported) */
	uint64_t visits, urls, malicious, errors;
	double last_seen;         /* wall clock of its last message or result */
};

/* The figures of a status snapshot that server.c computes. */
struct srv_status_counts {
	size_t queued, running;
	double urls_per_hour;
};

struct srv_final {
	const struct sched_url *u;
	enum sched_verdict v;
	const struct srv_client *client; /* whose visit (NULL: none), for its host's figures */
	int log;           /* output_final_render's log */
	char *line;        /* the rendered final line */
	char *report_name; /* the rendered report (NULL if it could not be made) */
	char *report;
};

struct srv {
	const struct server_opts *o;
	const struct server_config *cfg;
	struct scheduler *sched;
	struct store *store;
	struct output *out;
	int64_t op;
	/* fds: keep ep..input_fd together, teardown closes them in order */
	int ep, listen_fd, sig_fd, timer_fd, input_fd;
	struct srv_watch w_listen, w_sig, w_timer, w_input;
	struct srv_client *clients;
	struct srv_client *dead;
	unsigned next_serial;
	unsigned n_clients;    /* open connections */
	size_t pending_input;  /* sum of the clients' pending_in */
	int reserve_fd;        /* given up to accept-and-close at EMFILE */
	SSL_CTX *tls;          /* tls-dir: every client must do TLS; NULL = plain text */
	double tls_refusal_window; /* failed handshakes: logged a few per 10 s */
	unsigned tls_refusals_in_window;
	uint64_t tls_refusals_hidden;
	bool listen_paused;    /* out of descriptors: accept again at resume_accept */
	double resume_accept;
	uint64_t refused, refused_logged; /* connections closed at once, and when last said */
	double refused_log_at;
	const char *refused_why; /* the last reason (a literal) */
	/* the group whose results are being reported (freed by the scheduler
	 * before the files are written, so its id is kept apart) */
	uint32_t cur_group_id;
	const struct srv_client *cur_client;
	/* verdicts recorded in the open store transaction, written after it */
	struct srv_final *finals;
	size_t n_finals, cap_finals;
	/* input */
	bool input_is_stream, input_done, skipping;
	char *input_path;   /* absolute path of the list (NULL: stdin) */
	int64_t input_read; /* bytes read from it (its offset) */
	bool check_known;   /* resume with -f: skip URLs the run already has */
	char ibuf[CAP_URL_MAX + 512];
	size_t ilen;
	unsigned long lineno;
	struct cap_url_entry entry;
	/* counters */
	struct server_summary sum;
	unsigned long done;
	uint64_t inactivity, stalled;
	double visit_seconds;
	/* stats.log averages: revert -> reconnect, group sent -> first event */
	double revert_seconds, first_change_seconds;
	uint64_t n_revert_samples, n_first_change;
	struct srv_revert {
		char name[80];
		double at;
	} reverts[SRV_MAX_PENDING_REVERTS];
	unsigned n_reverts_pending;
	/* terminate without an end line: idle checks after the grace */
	unsigned idle_checks;
	double last_idle_check;
	double started, last_stats, last_progress, last_status;
	bool stop, finished;
	int exit_code;
	/* a run shared with other servers (shared.c) */
	bool shared;
	char owner[128];         /* this server's id in the store's leases */
	uint32_t lease_seconds;
	bool claim_idle;         /* the last claim found nothing */
	unsigned reconnects_seen; /* the store's reconnects already logged */
	double last_claim, last_renew, last_done_check;
	struct srv_host *hosts;
	size_t n_hosts, cap_hosts;
	bool status_warned; /* status.json could not be written (said once) */
	void *vm; /* the backend's state */
	struct srv_exclusions *excl; /* pushed after the options (send-exclusion-lists) */
};

/* Monotonic seconds. */
double srv_now(void);
/* Wall-clock seconds since the epoch (for reports). */
double srv_wall_now(void);
/* Writes log lines and reports for the verdicts just committed. */
void srv_write_finals(struct srv *s);
/* The last store transaction failed: its verdicts' URLs go back to the
 * queue (nothing was recorded or written for them). */
void srv_requeue_finals(struct srv *s);
/* Drops the store's journal entries of the reports written so far; call it
 * inside a store transaction. */
void srv_output_sync(struct srv *s);
/* Reads the URL input that is available now. */
void srv_input_read(struct srv *s);

/* shared.c */
/* Joins the shared run s->op as s->owner, taking back what that id held. */
int srv_shared_start(struct srv *s);
/* Claims URLs into the scheduler when it runs low. */
void srv_shared_claim(struct srv *s, double now);
/* Renews this server's leases. */
void srv_shared_tick(struct srv *s, double now);
/* True when the run's list is read and every URL of it is final (checked
 * at most once a second). */
bool srv_shared_run_done(struct srv *s, double now);
/* Gives this server's unfinished URLs back to the queue. */
void srv_shared_stop(struct srv *s);

/* hosts.c */
/* The host a client belongs to (see hosts.c). */
void srv_client_host(const struct srv_client *c, char *buf, size_t len);
/* Counts a visit that c reported (finish or a dac abort). */
void srv_host_visit(struct srv *s, const struct srv_client *c);
/* Counts a final verdict for the host of c (NULL: none). */
void srv_host_final(struct srv *s, const struct srv_client *c, enum sched_verdict v);
/* One log line with every host's figures. */
void srv_hosts_log(struct srv *s);
/* Rewrites OUTDIR/status.json. */
int srv_status_write(struct srv *s, const struct srv_status_counts *n);

/* clients.c */
/* tls-dir: loads the server's TLS context; without it, refuses a listen
 * socket off loopback unless plaintext-clients="allow".  Logs; 0 or -errno. */
int srv_tls_setup(struct srv *s);
void srv_accept(struct srv *s);
/* Logs how many failed TLS handshakes were not logged one by one. */
void srv_tls_refusals_report(struct srv *s, double now);
/* Logs the connections closed as they came since the last such line. */
void srv_refused_report(struct srv *s, double now);
/* Accepts again after a pause for lack of descriptors. */
void srv_accept_tick(struct srv *s, double now);
void srv_client_io(struct srv *s, struct srv_client *c, uint32_t events);
/* Hands groups to waiting clients, round-robin. */
void srv_dispatch(struct srv *s);
/* Pings, inactivity and stall checks. */
void srv_clients_tick(struct srv *s, double now);
/* Closes c (the revert); a group it held ends with err (retried once).
 * malicious_split: the group was malicious (dac splits it). */
void srv_client_close(struct srv *s, struct srv_client *c, uint32_t err, bool revert);
/* Frees clients closed during this loop iteration. */
void srv_reap_dead(struct srv *s);
