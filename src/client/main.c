/* main.c - capture-client: see client.h and docs/client.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "log.h"

int main(int argc, char **argv)
{
	struct client_options o;
	char work[64];
	log_init("capture-client", 0);
	client_options_init(&o);
	int r = client_options_parse(&o, argc, argv);
	if (r != 0)
		return r > 0 ? 0 : 2;
	log_init("capture-client", o.verbosity);
	if (!o.work_dir) {
		snprintf(work, sizeof(work), "/var/tmp/capture-client-%d", (int)getpid());
		o.work_dir = work;
	}
	if (geteuid() != 0) {
		log_warnx("capture-client needs root (namespaces, fanotify, proc connector)");
		return 2;
	}
	cap_proto_init();
	if (o.server)
		return client_run_server(&o) < 0 ? 1 : 0;
	if (o.calibrate)
		return client_run_calibrate(&o);
	return client_run_standalone(&o);
}
