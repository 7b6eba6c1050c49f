/* event.c - see event.h. */
#include "event.h"

#include <errno.h>
#include <string.h>

static const char *const type_names[CAP_EV_TYPE_MAX] = {
	[CAP_EV_FILE] = "file",
	[CAP_EV_PROCESS] = "process",
	[CAP_EV_REGISTRY] = "registry",
	[CAP_EV_CONNECTION] = "connection",
};

const char *cap_event_type_name(enum cap_event_type t)
{
	if ((unsigned)t >= CAP_EV_TYPE_MAX)
		return NULL;
	return type_names[t];
}

int cap_event_type_from_name(const char *name, enum cap_event_type *ret)
{
	for (int i = 0; i < CAP_EV_TYPE_MAX; i++)
		if (strcmp(name, type_names[i]) == 0) {
			*ret = (enum cap_event_type)i;
			return 0;
		}
	return -EINVAL;
}

bool cap_strlcpy(char *dst, const char *src, size_t size)
{
	size_t n;

	if (size == 0)
		return true;
	if (!src)
		src = "";
	n = strnlen(src, size);
	if (n == size) {
		memcpy(dst, src, size - 1);
		dst[size - 1] = '\0';
		return true;
	}
	memcpy(dst, src, n + 1);
	return false;
}

void cap_event_init(struct cap_event *ev, enum cap_event_type type, const char *action,
		    const char *process, const char *object1, const char *object2)
{
	memset(ev, 0, sizeof *ev);
	ev->type = type;
	clock_gettime(CLOCK_REALTIME, &ev->time);
	cap_strlcpy(ev->action, action, sizeof ev->action);
	cap_strlcpy(ev->process, process, sizeof ev->process);
	cap_strlcpy(ev->object1, object1, sizeof ev->object1);
	cap_strlcpy(ev->object2, object2, sizeof ev->object2);
}
