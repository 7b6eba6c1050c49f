/* monitors.c - the static table of the client's monitors (monitor.h):
 * monitor_ops_find() looks one up by the name the configuration uses. */
#include <stddef.h>
#include <string.h>

#include "monitor.h"
#include "mon-file.h"
#include "mon-network.h"
#include "mon-process.h"
#include "mon-registry.h"

static const struct monitor_ops *const monitors[] = {
    &mon_file_ops,
    &mon_process_ops,
    &mon_network_ops,
    &mon_registry_ops,
};

const struct monitor_ops *monitor_ops_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < sizeof(monitors) / sizeof(monitors[0]); i++)
		if (strcmp(monitors[i]->name, name) == 0)
			return monitors[i];
	return NULL;
}
