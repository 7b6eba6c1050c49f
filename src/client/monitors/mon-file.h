/* mon-file.h - the file monitor (fanotify on the sandbox's overlay; issue 4
 * item 2).  See mon-file.c and docs/monitors.md. */
#pragma once

#include "monitor.h"

/* name "file": Create, Write (merged per file and visit), Delete, Rename
 * (object1 old, object2 new), Chmod (a regular file gained an executable
 * bit); at stop() the queue is drained and the overlay upper diff adds what
 * fanotify cannot see (mmap writes). */
extern const struct monitor_ops mon_file_ops;

/* Options (issue 4: Open/Read reporting, off by default like the original's
 * default list).  MON_FILE_OPEN reports `Open` (FAN_OPEN), MON_FILE_READ
 * `Read` (FAN_ACCESS), each once per path and visit (later ones are
 * suppressed, like Write); opens by the client itself (the registry
 * monitor reading hive files) are suppressed.  May be called at any time;
 * -EINVAL for unknown flags. */
#define MON_FILE_OPEN 0x1u
#define MON_FILE_READ 0x2u
int mon_file_set_options(struct monitor *m, unsigned flags);
