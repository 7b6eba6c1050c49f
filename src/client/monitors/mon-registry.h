/* mon-registry.h - the "registry" monitor: Linux configuration hives
 * (crontabs, systemd units, XDG autostart, shell rc files, ld.so.preload,
 * authorized_keys, sudoers) as keys and values.  See mon-registry.c and
 * docs/monitors.md.  dconf (GVDB) is not implemented. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "monitor.h"

/* name "registry": at stop(), for every hive file the visit changed,
 * CreateKey / DeleteKey for the file and SetValueKey / DeleteValueKey for
 * each added / removed line (object1 key, object2 the line, bounded). */
extern const struct monitor_ops mon_registry_ops;

/* Maps a sandbox path to its hive key ("cron:/root",
 * "systemd:/user/evil.service", ...) in buf; false if the path is not in a
 * hive. */
bool mon_registry_key(const char *path, char *buf, size_t len);
