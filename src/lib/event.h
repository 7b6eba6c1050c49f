/* event.h - the event model shared by monitors, the analyzer, the protocol
 * and the server's outputs.
 *
 * One struct per state change, in the vocabulary of Capture-HPC's
 * system-event (docs/protocol.md): type, action, the acting process, two
 * objects.  Strings are fixed-size and always NUL-terminated; whatever came
 * from the sandbox is truncated here and escaped by whoever writes it out
 * (XML, CSV, JSON).  A struct of fixed arrays keeps events free of
 * ownership questions while they travel through queues.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define CAP_ACTION_MAX 64
#define CAP_PROC_MAX 1024
#define CAP_OBJ_MAX 4096
#define CAP_CMDLINE_MAX 1024 /* = PROCTABLE_CMDLINE_MAX (src/client/proctable.h) */

enum cap_event_type {
	CAP_EV_FILE = 0,
	CAP_EV_PROCESS,
	CAP_EV_REGISTRY,
	CAP_EV_CONNECTION,
	CAP_EV_TYPE_MAX,
};

struct cap_event {
	enum cap_event_type type;
	struct timespec time;	      /* CLOCK_REALTIME when observed */
	pid_t pid;		      /* acting process, pid as seen inside the sandbox; -1 if unknown (never the host pid) */
	pid_t host_pid;		      /* acting process, host pid (0 if unknown) */
	uint64_t cgroup_id;	      /* cgroup v2 id of the acting process (0 if unknown); bulk attribution */
	char process[CAP_PROC_MAX];   /* acting process path (sandbox view) */
	char action[CAP_ACTION_MAX];  /* e.g. "Write", "created", "SetValueKey", "tcp-connection" */
	char object1[CAP_OBJ_MAX];    /* path, child pid, key, ip:port */
	char object2[CAP_OBJ_MAX];    /* "-1", child path, value, new name of a rename */
	/* Added after the original fields (mongaps, issue 4 item 3): process
	 * events `created` / `exec` / `terminated`: the subject's command line
	 * (NULs as spaces, truncated), "" if it could not be read or for other
	 * types.  Not part of the original system-event; see docs/monitors.md. */
	char cmdline[CAP_CMDLINE_MAX];
};

/* "file", "process", "registry", "connection" (protocol names); NULL if out of range. */
const char *cap_event_type_name(enum cap_event_type t);
/* Inverse of cap_event_type_name; returns -EINVAL for an unknown name. */
int cap_event_type_from_name(const char *name, enum cap_event_type *ret);

/* Fills ev: zeroes it, sets type and time (now), copies the strings with
 * truncation (NULL = ""). */
void cap_event_init(struct cap_event *ev, enum cap_event_type type, const char *action,
		    const char *process, const char *object1, const char *object2);

/* Bounded copy that always terminates; returns true if src was truncated. */
bool cap_strlcpy(char *dst, const char *src, size_t size);
