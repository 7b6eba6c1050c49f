/* bench-exclusion.c - matching rate of the exclusion matcher: 200 rules
 * (mixed '+'/'-', 10 actions, realistic path regexes) against a mix of
 * events, on one core.  Prints a table; no pass/fail on timing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exclusion.h"

static const char *const actions[] = { "Write", "Create", "Delete", "Rename", "Chmod",
				       "SetValueKey", "CreateKey", "DeleteKey", "Read", "Open" };

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
	struct excl_list *l = NULL;
	char subj[128], obj[256], err[256];
	const size_t n_events = 2000000;
	unsigned excluded = 0;

	if (excl_list_new(&l) < 0)
		return 1;
	for (int i = 0; i < 200; i++) {
		const char *a = actions[i % 10];
		snprintf(subj, sizeof(subj), i % 3 ? ".*" : "/usr/lib/app%d/.*", i);
		snprintf(obj, sizeof(obj), "/home/user%d/\\.cache/[a-z0-9]+/.*\\.(tmp|log|db%d)", i, i);
		if (excl_list_add_rule(l, i % 7 == 0 ? '-' : '+', a, subj, obj, err, sizeof(err)) < 0) {
			fprintf(stderr, "rule %d: %s\n", i, err);
			return 1;
		}
	}
	const char *objs[] = { "/home/user10/.cache/abc/x.tmp", "/root/.config/chromium/Default/Preferences",
			       "/home/user3/.cache/zz9/some/deep/file.db3", "/tmp/evil.sh" };
	double t0 = now();
	for (size_t i = 0; i < n_events; i++)
		excluded += excl_list_match(l, actions[i % 10], "/usr/lib/chromium/chromium",
					    objs[i % 4]) == EXCL_EXCLUDE;
	double dt = now() - t0;
	printf("%-28s %10s %12s %10s\n", "bench", "rules", "events/s", "ns/event");
	printf("%-28s %10zu %12.0f %10.1f\n", "exclusion-match", excl_list_size(l),
	       (double)n_events / dt, dt * 1e9 / (double)n_events);
	printf("(excluded %u of %zu)\n", excluded, n_events);
	excl_list_free(l);
	return 0;
}
