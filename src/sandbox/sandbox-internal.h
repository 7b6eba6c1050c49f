/* sandbox-internal.h - shared between the sandbox-*.c modules; not public.
 *
 * struct sandbox holds every resource of one sandbox so that sandbox_free()
 * can undo a partial build in reverse order (each field says whether its
 * resource exists).  The messages on the sync and control sockets between
 * the host and pid 1 are fixed-size structs, size-checked on receipt.
 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "sandbox.h"

struct sock_filter;

#define SB_V2_ROOT "/sys/fs/cgroup/unified"
#define SB_V1_ROOT "/sys/fs/cgroup"
#define SB_STATE_DIR "/run/capture/sandbox"
#define SB_NET_MAX 16384 /* /30 subnets in 10.201.0.0/16 */

struct sandbox {
	char name[64];
	char base[PATH_MAX];  /* tmpfs mount point (host) */
	char upper[PATH_MAX]; /* base/upper */
	char lower[PATH_MAX];
	char root[64];	      /* /proc/PID/root */
	bool tmpfs_mounted;

	/* cgroups */
	char cg_v2[PATH_MAX];
	int cg_v2_fd; /* O_DIRECTORY of cg_v2, -1 if not created */
	uint64_t cg_id;
	char cg_pids[PATH_MAX];	  /* v1 pids cgroup, "" if none */
	char cg_memory[PATH_MAX]; /* v1 memory cgroup, "" if none */
	char cg_cpu[PATH_MAX];	  /* v1 cpu cgroup, "" if none */

	/* pid 1 */
	pid_t init_pid;
	int init_pidfd;
	int ctl_fd; /* control socket to pid 1 (SOCK_SEQPACKET) */
	int netns_fd;
	int root_fd;

	/* network */
	bool network;
	int net_index;	 /* -1 if no veth */
	int gw_rtnl;	 /* rtnetlink socket in the gateway netns */
	char gw_netns[64];
	char veth[16];
	char addr[16];
	char gw_addr[16];
	pid_t capture_reap[4]; /* pcap helpers that reported, still exiting (sb_capture_reap) */

	uid_t uid;
	gid_t gid;
	char home[PATH_MAX];

	/* seccomp filter of spawned processes (shared, never freed); NULL = none */
	const struct sock_filter *seccomp_prog;
	unsigned short seccomp_len;
};

/* Message from the host to pid 1 after the v1 cgroups and veth are ready. */
struct sb_go {
	uint32_t magic;
	int32_t net_index; /* -1: no network */
};
#define SB_GO_MAGIC 0x53424f47u

/* Result of the child's setup, pid 1 -> host over the sync socket. */
struct sb_result {
	int32_t err; /* 0 or positive errno */
	char step[32];
	char detail[224];
};

/* sandbox.c */
void sb_error_set(struct sandbox_error *e, int err, const char *step, const char *detail);

/* sandbox-mount.c */
int sb_mount_prepare(struct sandbox *sb, const struct sandbox_plan *plan, struct sandbox_error *e);
int sb_mount_child(const struct sandbox *sb, const struct sandbox_plan *plan, struct sb_result *res);
void sb_mount_release(struct sandbox *sb);
int sb_write_file(int dirfd, const char *path, const char *data, size_t len, mode_t mode);

/* sandbox-cgroup.c */
int sb_cgroup_create(struct sandbox *sb, const struct sandbox_plan *plan, struct sandbox_error *e);
int sb_cgroup_attach_v1(struct sandbox *sb, pid_t pid, struct sandbox_error *e);
int sb_cgroup_kill_all(struct sandbox *sb);
void sb_cgroup_release(struct sandbox *sb);
/* Removes the cgroups (v2, killed first, and v1) of stale sandboxes under
 * parent; the number of v2 ones. */
unsigned sb_cgroup_sweep(const char *parent, bool (*stale)(const char *name));
int sb_cgroup_open_child(struct sandbox *sb, const char *name, int *ret_fd);

/* sandbox-net.c */
int sb_net_create(struct sandbox *sb, const struct sandbox_plan *plan, struct sandbox_error *e);
int sb_net_child(const struct sandbox *sb, int net_index, const char *hostname, struct sb_result *res);
void sb_net_release(struct sandbox *sb);
/* Reaps the pcap helpers left by sandbox_capture_stop: all (wait) or those
 * that have exited. */
void sb_capture_reap(struct sandbox *sb, bool wait);
void sb_net_addresses(int index, char gw[16], char inside[16]);

/* sandbox-seccomp.c */
int sb_seccomp_prepare(struct sandbox *sb, const struct sandbox_plan *plan,
		       struct sandbox_error *e);

/* sandbox-run.c */
_Noreturn void sb_init_main(struct sandbox *sb, const struct sandbox_plan *plan, int sync_fd);
