/* sandbox-seccomp.c - the deny-list seccomp filter of every spawned process.
 *
 * The filter is compiled with libseccomp once per process and policy (it does
 * not depend on the sandbox) into a classic BPF program kept in memory; pid 1,
 * a clone of the host process, inherits that memory and every spawned child
 * loads the program with seccomp(SECCOMP_SET_MODE_FILTER) right before
 * execve (after PR_SET_NO_NEW_PRIVS).  The default action is ALLOW; the listed
 * calls fail with EPERM so that software degrades instead of crashing.  The
 * filter covers the native ABI and, on x86-64, the i386 and x32 ABIs (a 32-bit
 * static binary must not get around it).  The list and the reasons are in
 * docs/sandbox.md ("Seccomp").
 */
#include <errno.h>
#include <linux/filter.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "event.h"
#include "macro.h"
#include "sandbox-internal.h"

/* Denied with EPERM for every process spawned inside (docs/sandbox.md). */
static const char *const deny_list[] = {
    /* the kernel itself: replace it, load code into it */
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "query_module",
    /* large, frequently exploited attack surface reachable without privileges */
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "keyctl",
    "add_key",
    "request_key",
    /* the mount family (reachable inside a user namespace) */
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    /* host-wide state and hardware */
    "swapon",
    "swapoff",
    "reboot",
    "acct",
    "quotactl",
    "quotactl_fd",
    "syslog",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "iopl",
    "ioperm",
    "vm86",
    "vm86old",
    "lookup_dcookie",
    "open_by_handle_at",
    "uselib",
    "nfsservctl",
    "_sysctl",
};

struct cached {
	bool done;
	int err;
	struct sock_filter *prog;
	unsigned short len;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cached cache[2]; /* [allow_userns] */

static int add_rules(scmp_filter_ctx ctx, bool allow_userns)
{
	int r;
	for (size_t i = 0; i < ELEMENTSOF(deny_list); i++) {
		int nr = seccomp_syscall_resolve_name(deny_list[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* unknown to this libseccomp */
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
		if (r < 0 && r != -EDOM)
			return r;
	}
	/* vsock is not namespaced: a socket of that family reaches the
	 * hypervisor or the host through any vsock transport the host has,
	 * past the sandbox's network namespace.  (On the i386 ABI a socketcall
	 * passes its arguments in memory a filter cannot read: docs/sandbox.md.)
	 * The kernel reads the family as an int: only its lower 32 bits are
	 * compared, or AF_VSOCK with any upper bit set got a socket. */
	static const char *const sock_calls[] = {"socket", "socketpair"};
	for (size_t i = 0; i < ELEMENTSOF(sock_calls); i++) {
		int nr = seccomp_syscall_resolve_name(sock_calls[i]);
		if (nr == __NR_SCMP_ERROR)
			continue;
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), nr, 1,
				     SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffU, AF_VSOCK));
		if (r < 0 && r != -EDOM)
			return r;
	}
	if (allow_userns)
		return 0;
	/* No user namespaces: clone/unshare with CLONE_NEWUSER fail with EPERM;
	 * clone3 passes its flags in memory a filter cannot read, so it fails
	 * with ENOSYS, on which glibc (fork, pthread_create, posix_spawn) falls
	 * back to clone. */
	r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1,
			     SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
	if (r < 0)
		return r;
	r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
			     SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
	if (r < 0)
		return r;
	int nr = seccomp_syscall_resolve_name("clone3");
	if (nr != __NR_SCMP_ERROR) {
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
		if (r < 0 && r != -EDOM)
			return r;
	}
	return 0;
}

/* Exports the compiled program through a memfd into a heap copy. */
static int export_prog(scmp_filter_ctx ctx, struct cached *c)
{
	_cleanup_close_ int fd = memfd_create("capture-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	int r = seccomp_export_bpf(ctx, fd);
	if (r < 0)
		return r;
	off_t size = lseek(fd, 0, SEEK_END);
	if (size <= 0 || size % (off_t)sizeof(struct sock_filter) != 0 ||
	    size / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS)
		return -EPROTO;
	struct sock_filter *prog = malloc((size_t)size);
	if (!prog)
		return -ENOMEM;
	if (pread(fd, prog, (size_t)size, 0) != size) {
		free(prog);
		return -EIO;
	}
	c->prog = prog;
	c->len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
	return 0;
}

static int compile(bool allow_userns, struct cached *c)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return -ENOMEM;
	int r = 0;
	/* The native ABI is in the context; add the compat ABIs of this CPU. */
	if (seccomp_arch_native() == SCMP_ARCH_X86_64) {
		if ((r = seccomp_arch_add(ctx, SCMP_ARCH_X86)) < 0 && r != -EEXIST)
			goto out;
		if ((r = seccomp_arch_add(ctx, SCMP_ARCH_X32)) < 0 && r != -EEXIST)
			goto out;
	} else if (seccomp_arch_native() == SCMP_ARCH_AARCH64) {
		if ((r = seccomp_arch_add(ctx, SCMP_ARCH_ARM)) < 0 && r != -EEXIST)
			goto out;
	}
	/* The children set no_new_privs themselves, before loading. */
	if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0)
		goto out;
	if ((r = add_rules(ctx, allow_userns)) < 0)
		goto out;
	r = export_prog(ctx, c);
out:
	seccomp_release(ctx);
	return r;
}

int sb_seccomp_prepare(struct sandbox *sb, const struct sandbox_plan *plan, struct sandbox_error *e)
{
	sb->seccomp_prog = NULL;
	sb->seccomp_len = 0;
	if (!plan->seccomp)
		return 0;
	struct cached *c = &cache[plan->allow_userns ? 1 : 0];
	pthread_mutex_lock(&cache_lock);
	if (!c->done) {
		c->err = compile(plan->allow_userns, c);
		c->done = true;
	}
	pthread_mutex_unlock(&cache_lock);
	if (c->err < 0)
		return sb_error_set(e, c->err, "seccomp", "compiling the filter"), c->err;
	sb->seccomp_prog = c->prog;
	sb->seccomp_len = c->len;
	return 0;
}
