/* macro.h - cleanup attributes and small helpers used everywhere.
 *
 * Every resource gets a cleanup attribute so that early returns cannot leak
 * (the bubblewrap/systemd/crun convention).  Ownership is handed on with
 * TAKE_PTR / TAKE_FD, which return the value and reset the variable.
 * See docs/errors.md for the error convention that goes with this.
 */
#pragma once

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)
#define _warn_unused_ __attribute__((warn_unused_result))

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) _p_ = (p);                                                           \
		(p) = NULL;                                                                        \
		_p_;                                                                               \
	})
#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _fd_ = (fd);                                                                   \
		(fd) = -1;                                                                         \
		_fd_;                                                                              \
	})

static inline void freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

/* Closes and keeps errno, so that a cleanup on an error path does not clobber it. */
static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f)
{
	if (*f) {
		int saved = errno;
		fclose(*f);
		errno = saved;
	}
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* A child pid that must not outlive the scope: SIGKILL and reap. */
static inline void pid_killp(pid_t *pid)
{
	if (*pid > 0) {
		int saved = errno;
		kill(*pid, SIGKILL);
		(void)waitpid(*pid, NULL, 0);
		errno = saved;
	}
}
#define _cleanup_pid_ _cleanup_(pid_killp)

/* Declares a cleanup function for a type whose destructor is T_free(T *). */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                    \
	static inline void func##p(type *p)                                                        \
	{                                                                                          \
		if (*p)                                                                            \
			func(*p);                                                                  \
	}

/* Return -errno of the last failed libc call, never 0 (a missing errno becomes -EIO). */
static inline int negative_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

/* Format into a fixed buffer; returns -ENAMETOOLONG on truncation. */
#define xsnprintf(buf, len, ...)                                                                   \
	({                                                                                         \
		int _n_ = snprintf((buf), (len), __VA_ARGS__);                                     \
		(_n_ < 0 || (size_t)_n_ >= (size_t)(len)) ? -ENAMETOOLONG : 0;                     \
	})
