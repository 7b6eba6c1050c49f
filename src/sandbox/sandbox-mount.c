/* sandbox-mount.c - the sandbox's root: tmpfs, overlay, masks, /dev, /proc, pivot_root.
 *
 * Host side (sb_mount_prepare): a size-limited tmpfs per sandbox holds upper,
 * work and merged.  Everything the sandbox must see differently from the
 * lower layer is written into the upper dir BEFORE the overlay is mounted:
 * its own /etc/passwd, group, hosts, resolv.conf, hostname, the user's home,
 * a private /tmp, and the masks.  A mask of a directory is an empty opaque
 * directory (trusted.overlay.opaque=y), a mask of anything else a whiteout
 * (char device 0/0), so masking costs one mkdir or mknod and no mount.
 * Child side (sb_mount_child, run by pid 1 in its new mount namespace): the
 * overlay with index=on,nfs_export=on (fanotify FAN_MARK_FILESYSTEM works on
 * it, measured §3), read-only binds, proc, read-only sysfs, a minimal /dev on
 * tmpfs, then pivot_root and detach of the old root.  Reverting is one lazy
 * umount of the tmpfs: the overlay dies with the mount namespace.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "event.h"
#include "macro.h"
#include "sandbox-internal.h"

/* Hidden when the lower layer is the host "/" (and for images on request). */
static const char *const default_masks[] = {
	"/home",	   "/root",	     "/run",	       "/tmp",
	"/var/tmp",	   "/var/lib",	     "/var/log",       "/var/spool",
	"/var/mail",	   "/var/backups",   "/var/www",       "/srv",
	"/mnt",		   "/media",	     "/boot",	       "/work",
	"/lost+found",	   "/etc/shadow",    "/etc/shadow-",   "/etc/gshadow",
	"/etc/gshadow-",   "/etc/ssh",	     "/etc/ssl/private", "/etc/sudoers",
	"/etc/sudoers.d",  "/etc/credstore", "/etc/apt/auth.conf.d",
	"/etc/NetworkManager/system-connections", "/etc/wpa_supplicant",
	"/etc/capture",	   "/etc/machine-id", "/etc/subuid",   "/etc/subgid",
	NULL,
};

int sb_write_file(int dirfd, const char *path, const char *data, size_t len, mode_t mode)
{
	_cleanup_close_ int fd =
		openat(dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return negative_errno();
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		data += n;
		len -= (size_t)n;
	}
	if (fchmod(fd, mode) < 0)
		return negative_errno();
	return 0;
}

/* Creates the parents of rel (relative to upper) in the upper dir, copying
 * mode and owner from the lower layer so that the merged view is unchanged. */
static int upper_parents(const struct sandbox *sb, int upfd, const char *rel)
{
	char buf[PATH_MAX];
	if (cap_strlcpy(buf, rel, sizeof(buf)))
		return -ENAMETOOLONG;
	for (char *s = strchr(buf, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		struct stat st;
		char lower[PATH_MAX * 2];
		if (fstatat(upfd, buf, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			*s = '/';
			continue; /* made for an earlier mask */
		}
		snprintf(lower, sizeof(lower), "%s/%s", strcmp(sb->lower, "/") ? sb->lower : "", buf);
		if (lstat(lower, &st) < 0 || !S_ISDIR(st.st_mode))
			st = (struct stat){.st_mode = S_IFDIR | 0755};
		if (mkdirat(upfd, buf, st.st_mode & 07777) == 0) {
			if (fchownat(upfd, buf, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
			    fchmodat(upfd, buf, st.st_mode & 07777, 0) < 0)
				return negative_errno();
		} else if (errno != EEXIST)
			return negative_errno();
		*s = '/';
	}
	return 0;
}

/* An empty opaque directory in upper; the lower content is hidden. */
static int upper_opaque_dir(const struct sandbox *sb, int upfd, const char *rel, mode_t mode,
			    uid_t uid, gid_t gid)
{
	int r = upper_parents(sb, upfd, rel);
	if (r < 0)
		return r;
	if (mkdirat(upfd, rel, mode) < 0 && errno != EEXIST)
		return negative_errno();
	/* Path-based calls: 3 syscalls instead of open+3+close (this runs ~30
	 * times per build); the upper dir is ours and holds no symlinks yet. */
	char path[PATH_MAX * 2];
	if (xsnprintf(path, sizeof(path), "%s/%s", sb->upper, rel) < 0)
		return -ENAMETOOLONG;
	if (lsetxattr(path, "trusted.overlay.opaque", "y", 1, 0) < 0)
		return negative_errno();
	if ((uid != 0 || gid != 0) && fchownat(upfd, rel, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return negative_errno();
	if (fchmodat(upfd, rel, mode, 0) < 0)
		return negative_errno();
	return 0;
}

static int apply_mask(const struct sandbox *sb, int upfd, const char *path)
{
	char lower[PATH_MAX * 2];
	struct stat st;
	snprintf(lower, sizeof(lower), "%s%s", strcmp(sb->lower, "/") ? sb->lower : "", path);
	if (lstat(lower, &st) < 0)
		return errno == ENOENT ? 0 : negative_errno();
	const char *rel = path + 1;
	if (S_ISDIR(st.st_mode))
		return upper_opaque_dir(sb, upfd, rel, st.st_mode & 07777, st.st_uid, st.st_gid);
	int r = upper_parents(sb, upfd, rel);
	if (r < 0)
		return r;
	if (mknodat(upfd, rel, S_IFCHR | 0000, makedev(0, 0)) < 0 && errno != EEXIST)
		return negative_errno();
	return 0;
}

static int write_etc(const struct sandbox *sb, const struct sandbox_plan *plan, int upfd)
{
	char buf[16384];
	int r = upper_parents(sb, upfd, "etc/x");
	if (r < 0)
		return r;
	int n = snprintf(buf, sizeof(buf),
			 "root:x:0:0:root:/root:/bin/sh\n"
			 "%s:x:%u:%u:Capture sandbox user:/home/%s:/bin/sh\n"
			 "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
			 plan->user, (unsigned)plan->uid, (unsigned)plan->gid, plan->user);
	if ((r = sb_write_file(upfd, "etc/passwd", buf, (size_t)n, 0644)) < 0)
		return r;
	n = snprintf(buf, sizeof(buf), "root:x:0:\n%s:x:%u:\nnogroup:x:65534:\n", plan->user,
		     (unsigned)plan->gid);
	if ((r = sb_write_file(upfd, "etc/group", buf, (size_t)n, 0644)) < 0)
		return r;
	n = snprintf(buf, sizeof(buf), "%s\n", plan->hostname);
	if ((r = sb_write_file(upfd, "etc/hostname", buf, (size_t)n, 0644)) < 0)
		return r;
	size_t len = (size_t)snprintf(buf, sizeof(buf),
				      "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n"
				      "127.0.1.1\t%s\n",
				      plan->hostname);
	for (size_t i = 0; i < SANDBOX_MAX_HOSTS && plan->hosts[i].address; i++) {
		int k = snprintf(buf + len, sizeof(buf) - len, "%s\t%s\n", plan->hosts[i].address,
				 plan->hosts[i].name);
		if (k < 0 || (size_t)k >= sizeof(buf) - len)
			return -E2BIG;
		len += (size_t)k;
	}
	if ((r = sb_write_file(upfd, "etc/hosts", buf, len, 0644)) < 0)
		return r;
	if (plan->resolver)
		n = snprintf(buf, sizeof(buf), "nameserver %s\n", plan->resolver);
	else
		n = snprintf(buf, sizeof(buf), "# no resolver configured\n");
	/* resolv.conf is often a symlink in the lower layer: replace it. */
	(void)unlinkat(upfd, "etc/resolv.conf", 0);
	return sb_write_file(upfd, "etc/resolv.conf", buf, (size_t)n, 0644);
}

/* A bind target missing in the lower layer is created in upper. */
static int bind_target(const struct sandbox *sb, int upfd, const struct sandbox_bind *b)
{
	char lower[PATH_MAX * 2];
	struct stat st, src;
	snprintf(lower, sizeof(lower), "%s%s", strcmp(sb->lower, "/") ? sb->lower : "", b->target);
	if (lstat(lower, &st) == 0)
		return 0;
	if (stat(b->source, &src) < 0)
		return negative_errno();
	int r = upper_parents(sb, upfd, b->target + 1);
	if (r < 0)
		return r;
	if (S_ISDIR(src.st_mode))
		return mkdirat(upfd, b->target + 1, 0755) < 0 && errno != EEXIST ? negative_errno() : 0;
	return sb_write_file(upfd, b->target + 1, "", 0, 0644);
}

static int prepare_upper(struct sandbox *sb, const struct sandbox_plan *plan,
			 struct sandbox_error *e)
{
	_cleanup_close_ int upfd = open(sb->upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (upfd < 0)
		return sb_error_set(e, errno, "upper", sb->upper), -errno;
	int r;
	if (!plan->image || plan->default_masks)
		for (size_t i = 0; default_masks[i]; i++)
			if ((r = apply_mask(sb, upfd, default_masks[i])) < 0)
				return sb_error_set(e, r, "mask", default_masks[i]), r;
	for (size_t i = 0; i < SANDBOX_MAX_MASKS && plan->masks[i]; i++)
		if ((r = apply_mask(sb, upfd, plan->masks[i])) < 0)
			return sb_error_set(e, r, "mask", plan->masks[i]), r;
	if ((r = write_etc(sb, plan, upfd)) < 0)
		return sb_error_set(e, r, "etc", sb->upper), r;
	char rel[128];
	snprintf(rel, sizeof(rel), "home/%s", plan->user);
	snprintf(sb->home, sizeof(sb->home), "/home/%s", plan->user);
	if ((r = upper_opaque_dir(sb, upfd, "home", 0755, 0, 0)) < 0 ||
	    (r = upper_opaque_dir(sb, upfd, rel, 0750, plan->uid, plan->gid)) < 0 ||
	    (r = upper_opaque_dir(sb, upfd, "tmp", 01777, 0, 0)) < 0 ||
	    (r = upper_opaque_dir(sb, upfd, "root", 0700, 0, 0)) < 0)
		return sb_error_set(e, r, "home", rel), r;
	static const char *const mnt[] = {"proc", "sys", "dev", NULL};
	for (size_t i = 0; mnt[i]; i++) {
		char lower[PATH_MAX * 2];
		snprintf(lower, sizeof(lower), "%s/%s", strcmp(sb->lower, "/") ? sb->lower : "", mnt[i]);
		if (access(lower, F_OK) < 0 && mkdirat(upfd, mnt[i], 0555) < 0 && errno != EEXIST)
			return sb_error_set(e, errno, "mountpoint", mnt[i]), -errno;
	}
	for (size_t i = 0; i < SANDBOX_MAX_BINDS && plan->binds[i].source; i++)
		if ((r = bind_target(sb, upfd, &plan->binds[i])) < 0)
			return sb_error_set(e, r, "bind-target", plan->binds[i].target), r;
	return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	if (cap_strlcpy(buf, path, sizeof(buf)))
		return -ENAMETOOLONG;
	for (char *s = strchr(buf + 1, '/');; s = strchr(s + 1, '/')) {
		if (s)
			*s = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return negative_errno();
		if (!s)
			return 0;
		*s = '/';
	}
}

int sb_mount_prepare(struct sandbox *sb, const struct sandbox_plan *plan, struct sandbox_error *e)
{
	int r = mkdir_p(plan->state_dir, 0700);
	if (r < 0)
		return sb_error_set(e, r, "state-dir", plan->state_dir), r;
	if ((r = xsnprintf(sb->base, sizeof(sb->base), "%s/%s", plan->state_dir, sb->name)) < 0 ||
	    (r = xsnprintf(sb->upper, sizeof(sb->upper), "%s/upper", sb->base)) < 0)
		return sb_error_set(e, r, "state-dir", plan->state_dir), r;
	cap_strlcpy(sb->lower, plan->image ? plan->image : "/", sizeof(sb->lower));
	if (mkdir(sb->base, 0700) < 0)
		return sb_error_set(e, errno, "state-dir", sb->base), -errno;
	char opts[64];
	uint64_t size = plan->limits.tmpfs_bytes ? plan->limits.tmpfs_bytes : SANDBOX_DEFAULT_TMPFS;
	snprintf(opts, sizeof(opts), "size=%llu,mode=0755", (unsigned long long)size);
	if (mount("tmpfs", sb->base, "tmpfs", MS_NOSUID, opts) < 0) {
		r = negative_errno();
		(void)rmdir(sb->base);
		sb->base[0] = '\0';
		return sb_error_set(e, r, "tmpfs", opts), r;
	}
	sb->tmpfs_mounted = true;
	char p[PATH_MAX + 16];
	static const char *const sub[] = {"upper", "work", "merged", NULL};
	for (size_t i = 0; sub[i]; i++) {
		snprintf(p, sizeof(p), "%s/%s", sb->base, sub[i]);
		if (mkdir(p, 0755) < 0)
			return sb_error_set(e, errno, "tmpfs", p), -errno;
	}
	return prepare_upper(sb, plan, e);
}

void sb_mount_release(struct sandbox *sb)
{
	if (sb->tmpfs_mounted && umount2(sb->base, MNT_DETACH) == 0)
		sb->tmpfs_mounted = false;
	if (!sb->tmpfs_mounted && sb->base[0])
		(void)rmdir(sb->base);
}

/* ---- pid 1 side ---- */

#define STEP(res, st_, de_)                                                                    \
	({                                                                                         \
		(res)->err = errno ? errno : EIO;                                                  \
		cap_strlcpy((res)->step, (st_), sizeof((res)->step));                             \
		cap_strlcpy((res)->detail, (de_), sizeof((res)->detail));                       \
		-(res)->err;                                                                       \
	})

static int mount_dev(const char *merged, uint64_t shm_size, struct sb_result *res)
{
	char p[PATH_MAX + 32];
	snprintf(p, sizeof(p), "%s/dev", merged);
	if (mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=1m") < 0)
		return STEP(res, "dev", p);
	static const struct {
		const char *name;
		unsigned maj, min;
	} nodes[] = {{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7},
		     {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
	for (size_t i = 0; i < ELEMENTSOF(nodes); i++) {
		snprintf(p, sizeof(p), "%s/dev/%s", merged, nodes[i].name);
		if (mknod(p, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)) < 0 ||
		    chmod(p, 0666) < 0)
			return STEP(res, "dev", p);
	}
	static const char *const links[][2] = {{"/proc/self/fd", "fd"},	  {"/proc/self/fd/0", "stdin"},
					       {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
					       {"pts/ptmx", "ptmx"}};
	for (size_t i = 0; i < ELEMENTSOF(links); i++) {
		snprintf(p, sizeof(p), "%s/dev/%s", merged, links[i][1]);
		if (symlink(links[i][0], p) < 0)
			return STEP(res, "dev", p);
	}
	snprintf(p, sizeof(p), "%s/dev/pts", merged);
	if (mkdir(p, 0755) < 0 ||
	    mount("devpts", p, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") < 0)
		return STEP(res, "devpts", p);
	snprintf(p, sizeof(p), "%s/dev/shm", merged);
	char opts[64];
	snprintf(opts, sizeof(opts), "mode=1777,size=%llu", (unsigned long long)shm_size);
	if (mkdir(p, 01777) < 0 || mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
		return STEP(res, "shm", p);
	return 0;
}

static int mount_binds(const char *merged, const struct sandbox_plan *plan, struct sb_result *res)
{
	for (size_t i = 0; i < SANDBOX_MAX_BINDS && plan->binds[i].source; i++) {
		char p[PATH_MAX + 1100];
		snprintf(p, sizeof(p), "%s%s", merged, plan->binds[i].target);
		if (mount(plan->binds[i].source, p, NULL, MS_BIND | MS_REC, NULL) < 0)
			return STEP(res, "bind", plan->binds[i].source);
		if (mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
			  NULL) < 0)
			return STEP(res, "bind-ro", plan->binds[i].target);
	}
	return 0;
}

int sb_mount_child(const struct sandbox *sb, const struct sandbox_plan *plan, struct sb_result *res)
{
	char merged[PATH_MAX + 16], p[PATH_MAX + 32], opts[PATH_MAX * 3 + 64];
	errno = 0;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return STEP(res, "mount-private", "/");
	snprintf(merged, sizeof(merged), "%s/merged", sb->base);
	int n = snprintf(opts, sizeof(opts),
			 "lowerdir=%s,upperdir=%s/upper,workdir=%s/work,index=on,nfs_export=on",
			 sb->lower, sb->base, sb->base);
	if (n < 0 || (size_t)n >= sizeof(opts))
		return errno = ENAMETOOLONG, STEP(res, "overlay", sb->lower);
	if (mount("overlay", merged, "overlay", MS_NOSUID, opts) < 0)
		return STEP(res, "overlay", opts);
	int r = mount_binds(merged, plan, res);
	if (r < 0)
		return r;
	snprintf(p, sizeof(p), "%s/proc", merged);
	if (mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return STEP(res, "proc", p);
	snprintf(p, sizeof(p), "%s/sys", merged);
	if (mount("sysfs", p, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return STEP(res, "sysfs", p);
	uint64_t shm = plan->limits.tmpfs_bytes ? plan->limits.tmpfs_bytes : SANDBOX_DEFAULT_TMPFS;
	if ((r = mount_dev(merged, shm, res)) < 0)
		return r;
	if (chdir(merged) < 0)
		return STEP(res, "chdir", merged);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return STEP(res, "pivot_root", merged);
	if (umount2(".", MNT_DETACH) < 0)
		return STEP(res, "umount-old-root", "/");
	if (chdir("/") < 0)
		return STEP(res, "chdir", "/");
	return 0;
}
