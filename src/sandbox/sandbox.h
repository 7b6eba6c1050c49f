/* sandbox.h - the public API of the sandbox library (issue 3, ARCHITECTURE.md §2).
 *
 * A sandbox is a disposable guest: new mount, pid, uts, ipc, net and cgroup
 * namespaces; an overlay root (lower = a guest image or the host "/" with
 * sensitive paths masked, upper + work on a size-limited tmpfs, mounted with
 * index=on,nfs_export=on for fanotify); a fresh cgroup v2 per sandbox plus v1
 * pids/memory limits on hybrid hosts; a veth pair to the host's shared gateway
 * network namespace "capture-gw" with an nftables egress policy.  Its pid 1 is
 * a small reaper of ours that also spawns processes on the host's request.
 *
 * Life cycle (STYLE.md 6, plan then execute):
 *   struct sandbox_plan plan;  sandbox_plan_init(&plan);  ... adjust ...
 *   struct sandbox_error e;  struct sandbox *sb;
 *   r = sandbox_new(&plan, &sb, &e);        // all or nothing; e names the step
 *   sandbox_cgroup_new(sb, "url-1", &cg);   // child cgroup per URL (optional)
 *   sandbox_spawn(sb, &exec, &proc);        // as the unprivileged user, pidfd back
 *   ...
 *   sandbox_free(sb);                       // revert: kill, unmount, rmdir, del veth
 * Build-ahead: a client keeps the next sandbox built (sandbox_new) while the
 * current one is in use, and frees the used one after the visit; nothing in a
 * sandbox depends on another, so any number may exist at once.
 *
 * Errors: every function returns 0 or -errno (docs/errors.md); ret_* are set
 * only on success.  The library does not log.  All functions need root
 * (CAP_SYS_ADMIN, CAP_NET_ADMIN).  A struct sandbox is not thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct monitor_target;

/* The unprivileged user that runs everything inside (never added to the host:
 * the sandbox gets its own /etc/passwd and /etc/group in the upper layer). */
#define SANDBOX_DEFAULT_UID 64000
#define SANDBOX_DEFAULT_GID 64000
#define SANDBOX_DEFAULT_USER "capture"

/* Name of the shared gateway network namespace (/run/netns/capture-gw). */
#define SANDBOX_GATEWAY_NETNS "capture-gw"

#define SANDBOX_MAX_BINDS 32
#define SANDBOX_MAX_HOSTS 32
#define SANDBOX_MAX_MASKS 64
#define SANDBOX_MAX_FDS 16 /* extra fds passed to a spawned process */
#define SANDBOX_PATH "/usr/local/bin:/usr/bin:/bin" /* PATH of the default environment */

/* A read-only bind mount of a host path (file or directory) into the sandbox. */
struct sandbox_bind {
	const char *source; /* absolute host path; must exist */
	const char *target; /* absolute path inside; created (as empty file/dir) if missing */
};

/* An extra /etc/hosts line: "address name". */
struct sandbox_host {
	const char *address; /* IPv4 or IPv6 literal */
	const char *name;    /* host name, [A-Za-z0-9.-], <= 253 chars */
};

/* Resource limits.  0 means "the default" for every field but cpu_percent
 * (0 = no cpu limit).  Values below the minimum are a plan error (-EINVAL,
 * step "plan").  Defaults / minimums: */
#define SANDBOX_DEFAULT_MEMORY (1024ULL << 20) /* 1 GiB;  minimum 16 MiB */
#define SANDBOX_MIN_MEMORY (16ULL << 20)
#define SANDBOX_DEFAULT_PIDS 1024 /* minimum 8 */
#define SANDBOX_MIN_PIDS 8
#define SANDBOX_DEFAULT_TMPFS (1024ULL << 20) /* 1 GiB upper layer; minimum 4 MiB */
#define SANDBOX_MIN_TMPFS (4ULL << 20)
struct sandbox_limits {
	uint64_t memory_bytes; /* v2 memory.max if offered, else v1 memory.limit_in_bytes (+memsw) */
	uint64_t pids;	       /* v2 pids.max if offered, else v1 pids.max */
	uint64_t tmpfs_bytes;  /* size= of the tmpfs holding upper+work (all writes inside) */
	unsigned cpu_percent;  /* 1..100*ncpu: v2 cpu.max or v1 cpu.cfs_quota_us; 0 = none */
};

/* Egress/gateway configuration, applied when the gateway is created (the
 * first sandbox with network, or sandbox_gateway_up()).  An existing gateway
 * is reused as it is.  A plan's resolver at a denied (private) address is
 * reachable only if it is listed in resolvers[] of the gateway's creator. */
struct sandbox_gateway_config {
	const char *resolvers[4]; /* extra allowed destinations (port 53 only), IPv4 literals */
	uint16_t server_port;	  /* TCP port denied towards every address (0 = none) */
	bool nat;		  /* NAT to the uplink (masquerade out of the device of the
				     default route, after the egress policy); default false */
	const char *netns;	  /* gateway netns name; NULL = SANDBOX_GATEWAY_NETNS (tests use their own) */
	const char *uplink_netns; /* with nat: named netns holding the uplink (its default
				     route); NULL = the caller's netns, i.e. the host.  Tests
				     use a fake one so that nothing leaves the machine. */
};

/* Everything a sandbox is built from.  Pointers are borrowed for the duration
 * of sandbox_new() only. */
struct sandbox_plan {
	const char *image;     /* lower dir (guest image); NULL = host "/" with default masks */
	const char *state_dir; /* where sandbox tmpfs mounts live; default /run/capture/sandbox */
	const char *cgroup_parent; /* under /sys/fs/cgroup/unified; default "capture" */
	const char *hostname;	   /* default "sandbox" */
	const char *user;	   /* user name inside; default SANDBOX_DEFAULT_USER */
	uid_t uid;		   /* default SANDBOX_DEFAULT_UID; 0 is refused */
	gid_t gid;		   /* default SANDBOX_DEFAULT_GID; 0 is refused */
	bool default_masks;	   /* mask home dirs, /root, /etc/shadow, ssh keys, /run, /var/lib, ...
				      (always on when image == NULL; default true) */
	const char *masks[SANDBOX_MAX_MASKS];   /* extra absolute paths to hide (NULL ends) */
	struct sandbox_bind binds[SANDBOX_MAX_BINDS]; /* source NULL ends the list */
	struct sandbox_host hosts[SANDBOX_MAX_HOSTS]; /* address NULL ends the list */
	bool network;		  /* false: only lo inside */
	const char *resolver;	  /* nameserver for /etc/resolv.conf; default none (empty file) */
	struct sandbox_gateway_config gateway;
	struct sandbox_limits limits;
	/* A deny-list seccomp filter for every process sandbox_spawn() starts
	 * (kexec, modules, bpf, perf_event_open, userfaultfd, io_uring, keyrings,
	 * the mount family, ...: EPERM; docs/sandbox.md "Seccomp").  Default true. */
	bool seccomp;
	/* With seccomp: may spawned processes create user namespaces?  Default
	 * true, because Chromium's own sandbox needs them (without them it refuses
	 * to start unless run with --no-sandbox).  false: clone/unshare with
	 * CLONE_NEWUSER fail with EPERM and clone3 with ENOSYS (glibc falls back). */
	bool allow_userns;
};

/* Why sandbox_new() failed: errno and the step ("plan", "tmpfs", "cgroup",
 * "clone", "overlay", "pivot_root", "veth", ... ) plus a detail (usually a path). */
struct sandbox_error {
	int err; /* positive errno */
	char step[32];
	char detail[224];
};

struct sandbox;

/* Fills a plan with the defaults described above. */
void sandbox_plan_init(struct sandbox_plan *plan);

/* Validates the plan without touching the system (image exists and is a dir,
 * state_dir usable, limits above minimums, names well-formed).  0 or -errno
 * with *err filled (err may be NULL). */
int sandbox_plan_check(const struct sandbox_plan *plan, struct sandbox_error *err);

/* Builds and starts a sandbox (pid 1 running, network configured).  Either
 * fully succeeds or leaves nothing behind (no mount, cgroup, veth, process).
 * On failure *err (may be NULL) says which step failed and why. */
int sandbox_new(const struct sandbox_plan *plan, struct sandbox **ret, struct sandbox_error *err);

/* Revert: cgroup.kill everything, reap pid 1, drop the tmpfs (and with it the
 * upper layer), remove the cgroups (v2 and v1).  The veth pair goes with the
 * sandbox's netns, which the kernel destroys asynchronously (typically within
 * tens of ms; its name, index and address cannot be handed to another sandbox
 * meanwhile: docs/sandbox.md "Veth life cycle").  NULL is a no-op.
 * Cannot fail: every step is attempted (the cgroup removal waits up to 2 s
 * for the kernel to report the cgroup empty). */
void sandbox_free(struct sandbox *sb);

/* Introspection (valid while sb lives). */
pid_t sandbox_init_pid(const struct sandbox *sb);	/* host pid of pid 1 */
const char *sandbox_name(const struct sandbox *sb);	/* unique, e.g. "sb-1234-7" */
const char *sandbox_root(const struct sandbox *sb);	/* "/proc/PID/root" */
const char *sandbox_upper_dir(const struct sandbox *sb);
const char *sandbox_lower_dir(const struct sandbox *sb);
const char *sandbox_cgroup_path(const struct sandbox *sb); /* v2 directory (host path) */
uint64_t sandbox_cgroup_id(const struct sandbox *sb);
int sandbox_netns_fd(const struct sandbox *sb);		    /* borrowed */
const char *sandbox_veth_host(const struct sandbox *sb); /* in netns capture-gw; NULL w/o net */
const char *sandbox_address(const struct sandbox *sb);	 /* IPv4 of eth0 inside; NULL w/o net */
const char *sandbox_gateway_address(const struct sandbox *sb); /* its gateway; NULL w/o net */

/* Fills the monitors' view of the sandbox (src/client/monitor.h).  The
 * pointers and fds in *ret are borrowed from sb (root_fd is an O_PATH fd of
 * the sandbox root owned by sb). */
int sandbox_monitor_target(struct sandbox *sb, struct monitor_target *ret);

/* ---- cgroups ---- */

/* State of the sandbox's cgroup (or of a child cgroup). */
struct sandbox_cgroup_status {
	bool populated;	   /* cgroup.events populated */
	bool frozen;	   /* cgroup.events frozen */
	uint64_t pids_max_events; /* forks refused by the pids limit (sandbox-wide) */
	uint64_t oom_kills;	  /* processes killed by the memory limit (sandbox-wide) */
	uint64_t memory_bytes;	  /* current memory use (sandbox-wide) */
};

/* Removes what sandboxes of processes that no longer run left behind (a
 * client killed with SIGKILL cannot revert): their tmpfs mounts and folders
 * under the plan's state dir and their cgroups (v2 killed first, and v1).
 * Names are "sbPID-XXXXXXXX"; a PID that runs again (reused) is left for a
 * later sweep.  plan may be NULL (defaults).  *ret_count (may be NULL): the
 * sandboxes removed. */
int sandbox_sweep_stale(const struct sandbox_plan *plan, unsigned *ret_count);
/* Changes the sandbox-wide memory (bytes) and pids limits of a built
 * sandbox (0 = leave as it is), e.g. for a bulk group that runs many
 * application instances at once.  Lowering memory below what is in use:
 * cgroup v1 reclaims or fails with -EBUSY, v2 reclaims and else OOM-kills
 * inside.  -EOPNOTSUPP when the host offers no such controller (the
 * sandbox was then built without that limit). */
int sandbox_set_limits(struct sandbox *sb, uint64_t memory_bytes, uint64_t pids);
/* Creates a child cgroup NAME ([A-Za-z0-9_-], <= 64 chars) under the sandbox's
 * cgroup for attribution (one per visited URL); -EEXIST if it exists (a killed
 * cgroup is never reused: kernel 6.x quirk, see docs/sandbox.md).
 * *ret_id (may be NULL) gets its cgroup id. */
int sandbox_cgroup_new(struct sandbox *sb, const char *name, uint64_t *ret_id);
/* Kills every process in the child cgroup NAME with cgroup.kill, waits (<= 2 s)
 * until it is empty and removes it; the name may then be created afresh. */
int sandbox_cgroup_kill(struct sandbox *sb, const char *name);
/* Freezes (true) or thaws a child cgroup (NULL = whole sandbox); waits until frozen. */
int sandbox_cgroup_freeze(struct sandbox *sb, const char *name, bool freeze);
/* cgroup.events + limit counters of NAME (NULL = the sandbox). */
int sandbox_cgroup_status(struct sandbox *sb, const char *name, struct sandbox_cgroup_status *ret);
/* Host path of a child cgroup, written to buf; -ENAMETOOLONG if it does not fit. */
int sandbox_cgroup_child_path(struct sandbox *sb, const char *name, char *buf, size_t len);

/* ---- running processes inside ---- */

/* One extra fd for a spawned process: host fd `fd` becomes `target` inside
 * (e.g. Chromium's --remote-debugging-pipe uses 3 and 4). */
struct sandbox_fd {
	int fd;
	int target; /* >= 3 */
};

struct sandbox_exec {
	const char *const *argv;  /* argv[0] is an absolute path inside the sandbox */
	const char *const *envp;  /* NULL = HOME, USER, LOGNAME, PATH, LANG=C.UTF-8, SHELL */
	const char *cwd;	  /* NULL = the user's home */
	const char *cgroup;	  /* child cgroup name (made by sandbox_cgroup_new) or NULL */
	int stdin_fd;		  /* -1 = /dev/null */
	int stdout_fd;		  /* -1 = /dev/null */
	int stderr_fd;		  /* -1 = /dev/null */
	struct sandbox_fd fds[SANDBOX_MAX_FDS];
	size_t n_fds;
	bool as_root;		  /* run as root inside (tests/setup only); default false */
};

/* Initialises an exec description: no fds, std fds -1, as the user. */
void sandbox_exec_init(struct sandbox_exec *ex);

struct sandbox_process {
	pid_t pid;	/* host pid; -1 if it ended before sandbox_spawn() returned */
	pid_t inner_pid; /* pid inside the sandbox */
	int pidfd;	/* owned by the caller; POLLIN when it exits */
	int status_fd;	/* owned by the caller; readable once it exits (see sandbox_process_wait) */
};

/* The absolute path inside the sandbox of the command `name` (no '/'):
 * the first directory of SANDBOX_PATH where, seen from the sandbox's root
 * (its image or the host's "/", binds and masks; symlinks resolved inside),
 * it is a regular file with an execute bit.  -EINVAL for a name with '/',
 * -ENOENT if there is none, -ENAMETOOLONG if buf is too small. */
int sandbox_find_command(struct sandbox *sb, const char *name, char *buf, size_t len);

/* Starts a process inside: pid 1 forks it (so fork ancestry from pid 1 holds),
 * it joins the child cgroup (CLONE_INTO_CGROUP), drops to the plan's
 * uid/gid with no capabilities and PR_SET_NO_NEW_PRIVS, sets fds, cwd, env,
 * loads the plan's seccomp filter (also with as_root) and execs.  An exec failure is returned as its -errno (step detail lost). */
int sandbox_spawn(struct sandbox *sb, const struct sandbox_exec *ex, struct sandbox_process *ret);

/* Waits (up to timeout_ms, -1 = forever) for the process to end and returns
 * its wait status in *ret_status; -ETIMEDOUT if still running.  Pid 1 reaps
 * it; the status arrives on status_fd. */
int sandbox_process_wait(struct sandbox_process *p, int timeout_ms, int *ret_status);
/* Closes the fds of *p (does not kill it). */
void sandbox_process_done(struct sandbox_process *p);

/* Copies a host file into the sandbox at the absolute path `inside` (parent
 * dirs must exist), owned by the sandbox user, mode 0644.  Goes through the
 * sandbox root (/proc/PID/root) with O_NOFOLLOW on each component. */
int sandbox_copy_in(struct sandbox *sb, const char *host_path, const char *inside);
/* Copies a file out of the sandbox (regular files only, at most max_bytes;
 * -EFBIG beyond) to host_path (created 0600, must not exist). */
int sandbox_copy_out(struct sandbox *sb, const char *inside, const char *host_path,
		     uint64_t max_bytes);

/* ---- network ---- */

/* Creates the gateway netns capture-gw with its egress policy if it does not
 * exist (idempotent, serialized by a lock file).  cfg may be NULL (defaults). */
int sandbox_gateway_up(const struct sandbox_gateway_config *cfg);
/* Deletes the gateway netns NAME (NULL = capture-gw) and with it every sandbox veth. */
int sandbox_gateway_down(const char *name);

struct sandbox_capture;
/* Starts a libpcap capture on the sandbox's veth (gateway side, immediate
 * mode, snaplen 65535) written to path (a new .pcap file), in a helper
 * process that joins the gateway netns.  -ENODEV without network. */
int sandbox_capture_start(struct sandbox *sb, const char *path, struct sandbox_capture **ret);
/* Stops the capture, flushes the file and frees c; *ret_packets and
 * *ret_drops (may be NULL) get libpcap's received and dropped counts.  The
 * file is complete on return; the helper process may still be closing its
 * socket (30-40 ms) and is reaped by sandbox_free, so a capture must be
 * stopped before its sandbox is freed. */
int sandbox_capture_stop(struct sandbox_capture *c, uint64_t *ret_packets, uint64_t *ret_drops);
