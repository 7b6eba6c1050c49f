/* vmserver-none.c - the no-vm-server backend and the backend dispatch.
 *
 * With no-vm-server the clients are started by hand (on any host) and any
 * client that connects is accepted; a revert is only the closed connection,
 * after which the client is expected to rebuild its guest and reconnect.
 */
#include "vmserver.h"

#include "config.h"
#include "server-internal.h"

static int none_start(struct srv *s)
{
	return 0;
}

static void none_stop(struct srv *s)
{
}

static void none_tick(struct srv *s, double now)
{
}

static void none_child_exit(struct srv *s, void *child)
{
}

static unsigned none_client_connected(struct srv *s, const char *vmsid, const char *vmid)
{
	return 0;
}

static void none_client_closed(struct srv *s, unsigned child)
{
}

const struct vmserver_ops vmserver_none_ops = {
	.name = "no-vm-server",
	.start = none_start,
	.stop = none_stop,
	.tick = none_tick,
	.child_exit = none_child_exit,
	.client_connected = none_client_connected,
	.client_closed = none_client_closed,
};

static const struct vmserver_ops *ops(const struct srv *s)
{
	return s->cfg->backend == BACKEND_LOCAL ? &vmserver_local_ops : &vmserver_none_ops;
}

int vmserver_start(struct srv *s)
{
	return ops(s)->start(s);
}

void vmserver_stop(struct srv *s)
{
	ops(s)->stop(s);
}

void vmserver_tick(struct srv *s, double now)
{
	ops(s)->tick(s, now);
}

void vmserver_child_exit(struct srv *s, void *child)
{
	ops(s)->child_exit(s, child);
}

unsigned vmserver_client_connected(struct srv *s, const char *vm_server_id, const char *vm_id)
{
	return ops(s)->client_connected(s, vm_server_id, vm_id);
}

void vmserver_client_closed(struct srv *s, unsigned child)
{
	ops(s)->client_closed(s, child);
}
