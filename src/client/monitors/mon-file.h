/* mon-file.h - the file monitor (fanotify on the sandbox's overlay; issue 4
 * item 2).  See mon-file.c and docs/monitors.md. */
#pragma once

#include "monitor.h"

/* name "file": Create, Write (merged per file and visit), Delete, Rename
 * (object1 old, object2 new), Chmod (a regular file gained an executable
 * bit); at stop() the queue is drained and the overlay upper diff adds what
 * fanotify cannot see (mmap writes). */
extern const struct monitor_ops mon_file_ops;
