/* sbt-util.c - see sbt-util.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "sbt-util.h"

/* The sandboxes built and not yet freed (a test holds a handful at most). */
static struct sandbox *live[256];

struct sandbox *sbt_build(const struct sandbox_plan *plan)
{
	struct sandbox_error e = {0};
	struct sandbox *sb = NULL;
	if (sandbox_new(plan, &sb, &e) < 0) {
		fprintf(stderr, "sandbox_new: step %s (%s): %s\n", e.step, e.detail, strerror(e.err));
		return NULL;
	}
	for (size_t i = 0; i < ELEMENTSOF(live); i++)
		if (!live[i]) {
			live[i] = sb;
			return sb;
		}
	fprintf(stderr, "sbt_build: more than %zu sandboxes at once\n", ELEMENTSOF(live));
	sandbox_free(sb);
	return NULL;
}

void sbt_free(struct sandbox *sb)
{
	for (size_t i = 0; sb && i < ELEMENTSOF(live); i++)
		if (live[i] == sb)
			live[i] = NULL;
	sandbox_free(sb);
}

int sbt_teardown(void **state)
{
	unsigned n = 0;
	for (size_t i = 0; i < ELEMENTSOF(live); i++)
		if (live[i]) {
			sandbox_free(live[i]);
			live[i] = NULL;
			n++;
		}
	if (n)
		fprintf(stderr, "sbt_teardown: freed %u sandbox(es) the test left (it failed)\n", n);
	(void)state;
	return 0;
}

void sbt_plan(struct sandbox_plan *plan)
{
	sandbox_plan_init(plan);
	plan->state_dir = SBT_STATE_DIR;
	plan->cgroup_parent = SBT_CGROUP;
	plan->gateway.netns = SBT_GW;
	const char *probe = getenv("SBT_PROBE");
	if (probe) {
		plan->binds[0].source = probe;
		plan->binds[0].target = SBT_PROBE;
	}
}

int sbt_run(struct sandbox *sb, const char *const *argv, const char *cgroup, char *out,
	    size_t outlen, int timeout_ms, int *status)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	struct sandbox_exec ex;
	sandbox_exec_init(&ex);
	ex.argv = argv;
	ex.cgroup = cgroup;
	ex.stdout_fd = p[1];
	ex.stderr_fd = 2;
	struct sandbox_process pr;
	int r = sandbox_spawn(sb, &ex, &pr);
	close(p[1]);
	if (r < 0) {
		close(p[0]);
		return r;
	}
	size_t len = 0;
	for (;;) {
		struct pollfd pf = {.fd = p[0], .events = POLLIN};
		if (poll(&pf, 1, timeout_ms) <= 0)
			break;
		char tmp[4096];
		ssize_t n = read(p[0], tmp, sizeof(tmp));
		if (n <= 0)
			break;
		if (out && len + 1 < outlen) {
			size_t k = MIN((size_t)n, outlen - 1 - len);
			memcpy(out + len, tmp, k);
			len += k;
		}
	}
	if (out && outlen)
		out[len] = '\0';
	close(p[0]);
	r = sandbox_process_wait(&pr, timeout_ms, status);
	sandbox_process_done(&pr);
	return r;
}

static int count_lines(const char *path, const char *needle, const char *needle2)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	char line[4096];
	int n = 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle) && (!needle2 || strstr(line, needle2)))
			n++;
	fclose(f);
	return n;
}

/* Entries of a directory (only subdirectories with dirs_only, then
 * recursively down to depth). */
static int count_entries(const char *path, bool dirs_only, int depth)
{
	DIR *d = opendir(path);
	if (!d)
		return 0;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    (dirs_only && de->d_type != DT_DIR))
			continue;
		n++;
		if (dirs_only && depth > 0) {
			char p[4096];
			snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
			n += count_entries(p, true, depth - 1);
		}
	}
	closedir(d);
	return n;
}

static int count_test_procs(void)
{
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		char p[300];
		snprintf(p, sizeof(p), "/proc/%s/cgroup", de->d_name);
		n += count_lines(p, "/" SBT_CGROUP "/", NULL) > 0;
	}
	closedir(d);
	return n;
}

/* The number a shell pipeline prints (0 if none). */
static int count_cmd(const char *cmd)
{
	int n = 0;
	FILE *p = popen(cmd, "re");
	if (p) {
		if (fscanf(p, "%d", &n) != 1)
			n = 0;
		pclose(p);
	}
	return n;
}

void sbt_snapshot(struct sbt_snapshot *s)
{
	memset(s, 0, sizeof(*s));
	s->mounts = count_lines("/proc/self/mountinfo", SBT_STATE_DIR, NULL);
	s->tmpfs = count_lines("/proc/self/mountinfo", SBT_STATE_DIR, " tmpfs ");
	s->state_dirs = count_entries(SBT_STATE_DIR, false, 0);
	s->cg_v2 = count_entries("/sys/fs/cgroup/unified/" SBT_CGROUP, true, 4);
	s->cg_v1 = count_entries("/sys/fs/cgroup/pids/" SBT_CGROUP, true, 2);
	/* the memory v1 parent sits under our own memory cgroup */
	char line[4096], mem[4200] = "";
	FILE *f = fopen("/proc/self/cgroup", "re");
	while (f && fgets(line, sizeof(line), f)) {
		char *m = strstr(line, ":memory:");
		if (m) {
			m[strcspn(m, "\n")] = '\0';
			snprintf(mem, sizeof(mem), "/sys/fs/cgroup/memory%s/" SBT_CGROUP,
				 strcmp(m + 8, "/") ? m + 8 : "");
		}
	}
	if (f)
		fclose(f);
	if (mem[0])
		s->cg_v1 += count_entries(mem, true, 2);
	s->veths = sbt_count_veths();
	s->procs = count_test_procs();
	s->gw_nsids = count_cmd("ip -n " SBT_GW " netns list-id 2>/dev/null | grep -c nsid");
	s->gw_rules = count_cmd("ip netns exec " SBT_GW " nft list ruleset 2>/dev/null | wc -l");
	s->host_nat = count_cmd("nft list tables 2>/dev/null | grep -c ' capture_nat_sbt'");
	s->netns = count_cmd("ip netns list 2>/dev/null | grep -c '^sbt-[gplhw]'");
}

int sbt_count_veths(void)
{
	return count_cmd("ip -n " SBT_GW " -o link show 2>/dev/null | grep -c ' csb'");
}

bool sbt_snapshot_equal(const struct sbt_snapshot *a, const struct sbt_snapshot *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

void sbt_snapshot_print(const char *what, const struct sbt_snapshot *s)
{
	fprintf(stderr,
		"%s: mounts %d tmpfs %d state %d cg_v2 %d cg_v1 %d veths %d procs %d gw_nsids %d "
		"gw_rules %d host_nat %d netns %d\n",
		what, s->mounts, s->tmpfs, s->state_dirs, s->cg_v2, s->cg_v1, s->veths, s->procs,
		s->gw_nsids, s->gw_rules, s->host_nat, s->netns);
}

int sbt_sh(const char *cmd)
{
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

bool sbt_snapshot_wait(const struct sbt_snapshot *want, struct sbt_snapshot *got, int timeout_ms)
{
	for (int waited = 0;; waited += 50) {
		sbt_snapshot(got);
		if (sbt_snapshot_equal(want, got))
			return true;
		if (waited >= timeout_ms)
			return false;
		usleep(50000);
	}
}

void sbt_cleanup_leftovers(void)
{
	/* Only our own test names: kill what is in the test cgroups, unmount the
	 * test state dir's tmpfs mounts, remove the test cgroups. */
	(void)sbt_sh("for c in /sys/fs/cgroup/unified/" SBT_CGROUP "/*/; do "
		     "[ -d \"$c\" ] && echo 1 > \"$c/cgroup.kill\"; done 2>/dev/null; sleep 0.1; "
		     "grep -o ' " SBT_STATE_DIR "/[^ ]*' /proc/self/mountinfo | sort -r | "
		     "while read m; do umount -l \"$m\"; done; "
		     "rmdir " SBT_STATE_DIR "/* 2>/dev/null; "
		     "find /sys/fs/cgroup/unified/" SBT_CGROUP " /sys/fs/cgroup/pids/" SBT_CGROUP
		     " /sys/fs/cgroup/memory$(awk -F: '$2==\"memory\"{print $3}' /proc/self/cgroup)/" SBT_CGROUP
		     " -depth -type d -exec rmdir {} + 2>/dev/null; rmdir " SBT_STATE_DIR
		     " 2>/dev/null; true");
}

void sbt_lock(void)
{
	(void)mkdir("/run/capture", 0755);
	int fd = open("/run/capture/sandbox-test.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		perror("sbt_lock");
		exit(1);
	}
	/* fd stays open (and locked) until the process exits */
}
