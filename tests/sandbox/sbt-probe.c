/* sbt-probe - the program the sandbox tests run inside a sandbox (bind-mounted
 * read-only to /usr/local/bin/sbt-probe).  One sub-command per behaviour:
 *   id                      print "uid gid CapEff CapBnd NoNewPrivs"
 *   write-fd FD TEXT        write TEXT to fd FD
 *   cat PATH                copy PATH to stdout
 *   write PATH TEXT         create PATH with TEXT
 *   connect ADDR PORT MS    exit 0 connected, 1 refused/unreachable, 2 timeout, 3 other
 *   udp ADDR PORT N MS      N datagrams, each from its own connected socket, each
 *                           waiting MS for an answer or an error; print "blocked B
 *                           refused R timeout T answered A other O" (blocked:
 *                           EHOSTUNREACH/ENETUNREACH/EACCES, the gateway's reject;
 *                           refused: ECONNREFUSED, the peer's port unreachable)
 *   listen PORT             accept and close connections forever
 *   forkbomb                fork until refused; exit 0 when a fork failed with EAGAIN
 *   membomb MB              allocate and touch MB MiB; exit 0 if it all worked
 *   fill PATH               write until the disk is full; exit 28 on ENOSPC
 *   escape LOG              double fork + setsid, try unshare/mount/ptrace/init_module,
 *                           log "name errno" lines to LOG, end with "done", sleep forever
 *   spin N                  start N sleeping processes (orphans) and exit
 *   files DIR N             create N small files in DIR
 *   syscalls                try every call of the seccomp deny list with harmless,
 *                           invalid arguments; print "name errno" (0 = succeeded)
 *   syscalls32              some of them through the i386 ABI (int $0x80), x86-64 only
 *   userns                  try unshare/clone/clone3 with CLONE_NEWUSER in children;
 *                           print "name errno"
 *   accept-peer PORT        accept connections forever, print "peer ADDR" for each
 *   vsock                   socket/socketpair of AF_VSOCK (also with the upper 32
 *                           bits of the family set: the kernel reads an int) and a
 *                           socket of AF_INET; print "name errno" (0 = it worked)
 *   vsock32                 socket(AF_VSOCK) through the i386 ABI (x86-64 only)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/sched.h>
#include <unistd.h>

static long num(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s) {
		fprintf(stderr, "sbt-probe: bad number %s\n", s);
		exit(64);
	}
	return v;
}

static int cmd_id(void)
{
	char line[256], eff[64] = "?", bnd[64] = "?", nnp[16] = "?";
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return 3;
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "CapEff: %63s", eff);
		sscanf(line, "CapBnd: %63s", bnd);
		sscanf(line, "NoNewPrivs: %15s", nnp);
	}
	fclose(f);
	printf("%u %u %s %s %s\n", (unsigned)getuid(), (unsigned)getgid(), eff, bnd, nnp);
	return 0;
}

static int cmd_connect(const char *addr, long port, long ms)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
		return 64;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 3;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return errno == ECONNREFUSED || errno == ENETUNREACH || errno == EHOSTUNREACH ? 1 : 3;
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	if (poll(&p, 1, (int)ms) == 0)
		return 2;
	int err = 0;
	socklen_t len = sizeof(err);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
	if (err == 0)
		return 0;
	return err == ECONNREFUSED || err == ENETUNREACH || err == EHOSTUNREACH || err == EACCES ? 1 : 3;
}

/* One datagram on a connected socket: 0 answered, 1 blocked (EHOSTUNREACH,
 * ENETUNREACH, EACCES), 2 no answer within ms, 3 other, 4 refused (ECONNREFUSED). */
static int udp_once(const struct sockaddr_in *sa, long ms)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 ||
	    send(fd, "x", 1, 0) != 1) {
		if (fd >= 0)
			close(fd);
		return 3;
	}
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r = poll(&p, 1, (int)ms);
	char buf[64];
	ssize_t n = r > 0 ? recv(fd, buf, sizeof(buf), MSG_DONTWAIT) : -1;
	int err = errno;
	close(fd);
	if (r == 0)
		return 2;
	if (n >= 0)
		return 0;
	if (err == ECONNREFUSED)
		return 4;
	return err == EHOSTUNREACH || err == ENETUNREACH || err == EACCES ? 1 : 3;
}

static int cmd_udp(const char *addr, long port, long count, long ms)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
		return 64;
	int n[5] = {0};
	for (long i = 0; i < count; i++)
		n[udp_once(&sa, ms)]++;
	printf("blocked %d refused %d timeout %d answered %d other %d\n", n[1], n[4], n[2], n[0],
	       n[3]);
	return 0;
}

static int cmd_listen(long port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0)
		return 3;
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		int c = accept(fd, NULL, NULL);
		if (c >= 0)
			close(c);
	}
}

static int cmd_forkbomb(void)
{
	for (int i = 0; i < 100000; i++) {
		pid_t p = fork();
		if (p < 0)
			return errno == EAGAIN ? 0 : 3;
		if (p == 0) {
			pause();
			_exit(0);
		}
	}
	return 1;
}

static int cmd_membomb(long mb)
{
	for (long i = 0; i < mb; i++) {
		char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return 1;
		memset(p, 0x5a, 1 << 20);
	}
	return 0;
}

static int cmd_fill(const char *path)
{
	static char buf[1 << 16];
	memset(buf, 'x', sizeof(buf));
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return 3;
	for (;;)
		if (write(fd, buf, sizeof(buf)) < 0)
			return errno == ENOSPC ? 28 : 3;
}

static void logit(FILE *f, const char *what, int r)
{
	fprintf(f, "%s %d\n", what, r < 0 ? errno : 0);
	fflush(f);
}

static int cmd_escape(const char *log)
{
	pid_t p = fork();
	if (p != 0)
		return p < 0 ? 3 : 0; /* the first child returns at once */
	if (fork() != 0)
		_exit(0); /* double fork: the grandchild is orphaned */
	setsid();
	FILE *f = fopen(log, "we");
	if (!f)
		_exit(3);
	logit(f, "unshare-mnt", unshare(CLONE_NEWNS));
	logit(f, "unshare-net", unshare(CLONE_NEWNET));
	logit(f, "mount", mount("tmpfs", "/tmp", "tmpfs", 0, NULL));
	logit(f, "ptrace-init", (int)ptrace(PTRACE_ATTACH, 1, NULL, NULL));
	logit(f, "init_module", (int)syscall(SYS_init_module, NULL, 0, ""));
	logit(f, "setuid0", setuid(0));
	logit(f, "kill-init", kill(1, SIGKILL));
	fprintf(f, "pid %d\ndone\n", (int)getpid());
	fclose(f);
	for (;;)
		pause();
}

static int cmd_spin(long n)
{
	for (long i = 0; i < n; i++) {
		pid_t p = fork();
		if (p < 0)
			return 3;
		if (p == 0) {
			/* let go of the caller's pipes: only the process stays */
			close(0);
			close(1);
			close(2);
			for (;;)
				pause();
		}
	}
	return 0;
}

static int cmd_files(const char *dir, long n)
{
	char path[4096];
	for (long i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/f%ld", dir, i);
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, "data\n", 5) != 5)
			return 3;
		close(fd);
	}
	return 0;
}

/* Every call of the deny list (src/sandbox/sandbox-seccomp.c) with arguments
 * that make it fail harmlessly (bad pointer, bad fd, bad flags or magic) when
 * no filter stops it, even as root: the test compares both. */
static int cmd_syscalls(void)
{
	void *bad = (void *)1; /* unmapped: EFAULT */
	struct {
		const char *name;
		long nr;
		long a[6];
	} calls[] = {
		{"kexec_load", SYS_kexec_load, {0, 0, 0, -1L}},
		{"kexec_file_load", SYS_kexec_file_load, {-1, -1, 0, 0, -1L}},
		{"init_module", SYS_init_module, {(long)bad, 16, (long)bad}},
		{"finit_module", SYS_finit_module, {-1, (long)bad, 0}},
		{"delete_module", SYS_delete_module, {(long)bad, 0}},
		{"bpf", SYS_bpf, {-1, 0, 0}},
		{"perf_event_open", SYS_perf_event_open, {(long)bad, 0, -1, -1, 0}},
		{"userfaultfd", SYS_userfaultfd, {-1}},
		{"io_uring_setup", SYS_io_uring_setup, {0, (long)bad}},
		{"io_uring_enter", SYS_io_uring_enter, {-1, 0, 0, 0, 0, 0}},
		{"io_uring_register", SYS_io_uring_register, {-1, 0, 0, 0}},
		{"keyctl", SYS_keyctl, {-1, 0, 0, 0, 0}},
		{"add_key", SYS_add_key, {(long)bad, (long)bad, 0, 0, 0}},
		{"request_key", SYS_request_key, {(long)bad, (long)bad, 0, 0}},
		{"mount", SYS_mount, {(long)bad, (long)bad, (long)bad, 0, 0}},
		{"umount2", SYS_umount2, {(long)bad, 0}},
		{"pivot_root", SYS_pivot_root, {(long)bad, (long)bad}},
		{"move_mount", SYS_move_mount, {-1, (long)bad, -1, (long)bad, 0}},
		{"open_tree", SYS_open_tree, {-1, (long)bad, 0}},
		{"fsopen", SYS_fsopen, {(long)bad, 0}},
		{"fsconfig", SYS_fsconfig, {-1, 0, 0, 0, 0}},
		{"fsmount", SYS_fsmount, {-1, 0, 0}},
		{"fspick", SYS_fspick, {-1, (long)bad, 0}},
		{"mount_setattr", SYS_mount_setattr, {-1, (long)bad, 0, (long)bad, 0}},
		{"swapon", SYS_swapon, {(long)bad, 0}},
		{"swapoff", SYS_swapoff, {(long)bad}},
		{"reboot", SYS_reboot, {0, 0, 0, 0}},
		{"acct", SYS_acct, {(long)bad}},
		{"quotactl", SYS_quotactl, {0, (long)bad, 0, 0}},
		{"syslog", SYS_syslog, {-1, 0, 0}},
		{"settimeofday", SYS_settimeofday, {(long)bad, 0}},
		{"clock_settime", SYS_clock_settime, {0, (long)bad}},
		{"clock_adjtime", SYS_clock_adjtime, {0, (long)bad}},
		{"adjtimex", SYS_adjtimex, {(long)bad}},
		{"iopl", SYS_iopl, {4}},
		{"ioperm", SYS_ioperm, {0x10000, 1, 1}},
		{"open_by_handle_at", SYS_open_by_handle_at, {-1, (long)bad, 0}},
	};
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		errno = 0;
		long r = syscall(calls[i].nr, calls[i].a[0], calls[i].a[1], calls[i].a[2],
				 calls[i].a[3], calls[i].a[4], calls[i].a[5]);
		printf("%s %d\n", calls[i].name, r < 0 ? errno : 0);
	}
	return 0;
}

/* vsock is not namespaced: the seccomp filter refuses the family. */
static int cmd_vsock(void)
{
	int sv[2];
	errno = 0;
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	printf("socket-vsock %d\n", fd < 0 ? errno : 0);
	errno = 0;
	int r = socketpair(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	printf("socketpair-vsock %d\n", r < 0 ? errno : 0);
#if ULONG_MAX > 0xffffffffUL
	/* the kernel takes the family as an int: only a comparison of the
	 * lower 32 bits of the argument sees AF_VSOCK here */
	long hi = (long)(0x100000000UL | AF_VSOCK);
	errno = 0;
	long s = syscall(SYS_socket, hi, (long)(SOCK_STREAM | SOCK_CLOEXEC), 0L);
	printf("socket-vsock-hi %d\n", s < 0 ? errno : 0);
	errno = 0;
	s = syscall(SYS_socketpair, hi, (long)(SOCK_STREAM | SOCK_CLOEXEC), 0L, sv);
	printf("socketpair-vsock-hi %d\n", s < 0 ? errno : 0);
#endif
	errno = 0;
	int in = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	printf("socket-inet %d\n", in < 0 ? errno : 0);
	return 0;
}

#if defined(__x86_64__)
static long sys32(long nr, long a, long b, long c)
{
	long r;
	__asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
	return r;
}
#endif

/* i386 numbers: a 32-bit program must not get around the filter. */
static int cmd_syscalls32(void)
{
#if defined(__x86_64__)
	static const struct {
		const char *name;
		long nr, a, b, c;
	} calls[] = {
		{"mount32", 21, 1, 1, 1},	   {"init_module32", 128, 1, 16, 1},
		{"keyctl32", 288, -1, 0, 0},	   {"perf_event_open32", 336, 1, 0, -1},
		{"bpf32", 357, -1, 0, 0},	   {"userfaultfd32", 374, -1, 0, 0},
		{"io_uring_setup32", 425, 0, 1, 0}, {"syslog32", 103, -1, 0, 0},
	};
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		long r = sys32(calls[i].nr, calls[i].a, calls[i].b, calls[i].c);
		printf("%s %ld\n", calls[i].name, r < 0 && r > -4096 ? -r : 0);
	}
#endif
	return 0;
}

/* socket(AF_VSOCK) by the i386 number (359): the filter covers that ABI too. */
static int cmd_vsock32(void)
{
#if defined(__x86_64__)
	long r = sys32(359, AF_VSOCK, SOCK_STREAM, 0);
	printf("socket-vsock32 %ld\n", r < 0 && r > -4096 ? -r : 0);
#endif
	return 0;
}

/* Each attempt runs in a child (a success changes only that child). */
static int try_in_child(int how)
{
	pid_t p = fork();
	if (p < 0)
		return -1;
	if (p == 0) {
		long r = -1;
		if (how == 0) {
			r = unshare(CLONE_NEWUSER);
			_exit(r < 0 ? errno : 0);
		}
		struct clone_args ca = {.flags = CLONE_NEWUSER, .exit_signal = SIGCHLD};
		if (how == 1)
			r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
		else
			r = syscall(SYS_clone3, &ca, sizeof(ca));
		if (r == 0)
			_exit(0); /* the grandchild in its user namespace */
		if (r > 0)
			waitpid((pid_t)r, NULL, 0);
		_exit(r < 0 ? errno : 0);
	}
	int st;
	if (waitpid(p, &st, 0) < 0 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static int cmd_userns(void)
{
	printf("unshare-userns %d\n", try_in_child(0));
	printf("clone-userns %d\n", try_in_child(1));
	printf("clone3-userns %d\n", try_in_child(2));
	/* ordinary process creation still works */
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	printf("fork %d\n", p > 0 && waitpid(p, NULL, 0) == p ? 0 : errno);
	return 0;
}

static int cmd_accept_peer(long port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0)
		return 3;
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		struct sockaddr_in peer;
		socklen_t len = sizeof(peer);
		int c = accept(fd, (struct sockaddr *)&peer, &len);
		if (c < 0)
			continue;
		char buf[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &peer.sin_addr, buf, sizeof(buf));
		printf("peer %s\n", buf);
		fflush(stdout);
		close(c);
	}
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 64;
	const char *c = argv[1];
	if (!strcmp(c, "id"))
		return cmd_id();
	if (!strcmp(c, "write-fd") && argc == 4) {
		size_t n = strlen(argv[3]);
		return write((int)num(argv[2]), argv[3], n) == (ssize_t)n ? 0 : 3;
	}
	if (!strcmp(c, "cat") && argc == 3) {
		FILE *f = fopen(argv[2], "re");
		if (!f)
			return 3;
		int ch;
		while ((ch = fgetc(f)) != EOF)
			putchar(ch);
		fclose(f);
		return 0;
	}
	if (!strcmp(c, "write") && argc == 4) {
		FILE *f = fopen(argv[2], "we");
		if (!f)
			return 3;
		fputs(argv[3], f);
		return fclose(f) == 0 ? 0 : 3;
	}
	if (!strcmp(c, "connect") && argc == 5)
		return cmd_connect(argv[2], num(argv[3]), num(argv[4]));
	if (!strcmp(c, "udp") && argc == 6)
		return cmd_udp(argv[2], num(argv[3]), num(argv[4]), num(argv[5]));
	if (!strcmp(c, "listen") && argc == 3)
		return cmd_listen(num(argv[2]));
	if (!strcmp(c, "forkbomb"))
		return cmd_forkbomb();
	if (!strcmp(c, "membomb") && argc == 3)
		return cmd_membomb(num(argv[2]));
	if (!strcmp(c, "fill") && argc == 3)
		return cmd_fill(argv[2]);
	if (!strcmp(c, "escape") && argc == 3)
		return cmd_escape(argv[2]);
	if (!strcmp(c, "spin") && argc == 3)
		return cmd_spin(num(argv[2]));
	if (!strcmp(c, "syscalls"))
		return cmd_syscalls();
	if (!strcmp(c, "syscalls32"))
		return cmd_syscalls32();
	if (!strcmp(c, "userns"))
		return cmd_userns();
	if (!strcmp(c, "vsock"))
		return cmd_vsock();
	if (!strcmp(c, "vsock32"))
		return cmd_vsock32();
	if (!strcmp(c, "accept-peer") && argc == 3)
		return cmd_accept_peer(num(argv[2]));
	if (!strcmp(c, "files") && argc == 4)
		return cmd_files(argv[2], num(argv[3]));
	return 64;
}
