/* vmserver.h - the "virtual machine server" backends.
 *
 * A backend makes sure that clients exist and come back after a revert (the
 * server closing the connection).  no-vm-server (vmserver-none.c): clients
 * are started by hand and simply connect.  local-sandbox (vmserver-local.c):
 * starts N capture-client processes, watches each with a pidfd in the epoll
 * loop and supervises them (restart with backoff, connect timeouts; see
 * vmserver-local.c).  Selected by server_config.backend.
 */
#pragma once

struct srv;

struct vmserver_ops {
	const char *name;
	int (*start)(struct srv *s);
	void (*stop)(struct srv *s);
	void (*tick)(struct srv *s, double now);
	void (*child_exit)(struct srv *s, void *child);
	/* A client sent connect/reconnect with these ids: the backend's child
	 * number (1..) if it is one of its children, else 0. */
	unsigned (*client_connected)(struct srv *s, const char *vm_server_id, const char *vm_id);
	/* The connection of child number child (from client_connected) ended. */
	void (*client_closed)(struct srv *s, unsigned child);
};

extern const struct vmserver_ops vmserver_none_ops;
extern const struct vmserver_ops vmserver_local_ops;

/* Starts the backend's clients.  0 or -errno. */
int vmserver_start(struct srv *s);
/* Stops every client the backend started (SIGTERM, then SIGKILL) and reaps it. */
void vmserver_stop(struct srv *s);
/* Called once per tick with the monotonic time: delayed restarts. */
void vmserver_tick(struct srv *s, double now);
/* A pidfd watched by the loop became readable: the child exited. */
void vmserver_child_exit(struct srv *s, void *child);
unsigned vmserver_client_connected(struct srv *s, const char *vm_server_id, const char *vm_id);
void vmserver_client_closed(struct srv *s, unsigned child);
