/* sbt-util.h - helpers shared by the sandbox tests and benchmarks: a test
 * plan (own state dir, cgroup parent and gateway netns, the probe bound in),
 * running the probe with its output captured, and a snapshot of everything a
 * sandbox could leave behind (mounts, cgroups, veths, processes, tmpfs). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "sandbox.h"

#define SBT_STATE_DIR "/run/capture/sandbox-test"
#define SBT_CGROUP "sandbox-test"
#define SBT_GW "sbt-gw"
#define SBT_PROBE "/usr/local/bin/sbt-probe"

/* A plan with the test names and the probe (from $SBT_PROBE) bound in. */
void sbt_plan(struct sandbox_plan *plan);

/* sandbox_new() that prints the failed step; NULL on failure.  The sandbox
 * is registered until sbt_free(): a test whose assertion fails leaves the
 * test early, and sbt_teardown() then frees what it built, so that the
 * failure is reported as itself, not as a leak or as leftovers that fail
 * the next test's snapshot. */
struct sandbox *sbt_build(const struct sandbox_plan *plan);
/* Unregisters and frees (sandbox_free; NULL and unregistered ones too). */
void sbt_free(struct sandbox *sb);
/* cmocka teardown: frees every sandbox still registered; returns 0. */
int sbt_teardown(void **state);
/* cmocka_unit_test with sbt_teardown. */
#define sbt_unit_test(f) cmocka_unit_test_teardown(f, sbt_teardown)

/* Runs argv inside (NULL-terminated), stdout into out (NUL-terminated,
 * truncated), waits up to timeout_ms.  Returns 0 with *status, or -errno. */
int sbt_run(struct sandbox *sb, const char *const *argv, const char *cgroup, char *out,
	    size_t outlen, int timeout_ms, int *status);

struct sbt_snapshot {
	int mounts;	/* mountinfo lines under the test state dir */
	int tmpfs;	/* of which tmpfs */
	int state_dirs; /* entries in the test state dir */
	int cg_v2;	/* cgroups under the test v2 parent */
	int cg_v1;	/* cgroups under the test v1 parents (pids, memory) */
	int veths;	/* csb* links in the test gateway */
	int procs;	/* processes in any test cgroup */
	int gw_nsids;	/* peer netns ids the test gateway knows: sandbox netns still alive */
	int gw_rules;	/* lines of the test gateway's nftables ruleset */
	int host_nat;	/* nftables tables capture_nat_sbt* in the host netns */
	int netns;	/* named netns sbt-{gw,gwn,pub,lan,host,wan} (gateways, test worlds) */
};
/* Number of csb* links in the test gateway (cheap: one `ip` call). */
int sbt_count_veths(void);
void sbt_snapshot(struct sbt_snapshot *s);
bool sbt_snapshot_equal(const struct sbt_snapshot *a, const struct sbt_snapshot *b);
void sbt_snapshot_print(const char *what, const struct sbt_snapshot *s);

/* Waits (<= timeout_ms) until the snapshot equals *want (the kernel destroys
 * a sandbox's netns and veth asynchronously); fills *got with the last one. */
bool sbt_snapshot_wait(const struct sbt_snapshot *want, struct sbt_snapshot *got, int timeout_ms);

/* Serializes the sandbox test programs of every build dir on this host (they
 * share the names above; `meson test` in another engineer's build dir runs
 * them too): takes /run/capture/sandbox-test.lock for the life of the process. */
void sbt_lock(void);

/* Removes what an aborted earlier test run left: test mounts and cgroups. */
void sbt_cleanup_leftovers(void);

/* Runs a shell command line on the host (test setup only); returns its exit status. */
int sbt_sh(const char *cmd);
