/* mon-registry.h - the "registry" monitor: Linux configuration hives
 * (crontabs, systemd units, XDG autostart, shell rc files, ld.so.preload,
 * authorized_keys, sudoers, the dconf user database) as keys and values.
 * See mon-registry.c and docs/monitors.md. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "monitor.h"

/* name "registry": as a hive file is written (fanotify, its own group),
 * CreateKey / DeleteKey for the file and SetValueKey / DeleteValueKey for
 * each added / removed line (object1 key, object2 the line, bounded),
 * attributed to the writing process; for the dconf database one
 * SetValueKey / DeleteValueKey per changed dconf key (object1
 * "dconf:/org/...", object2 the GVariant text of the new / removed value).
 * stop() compares every hive file the upper diff lists once more, so a
 * change fanotify did not name is still reported (process "unknown" unless
 * a writer was recorded). */
extern const struct monitor_ops mon_registry_ops;

/* Maps a sandbox path to its hive key ("cron:/root",
 * "systemd:/user/evil.service", "dconf:" for ~/.config/dconf/user, ...) in
 * buf; false if the path is not in a hive. */
bool mon_registry_key(const char *path, char *buf, size_t len);

/* Events of the current/last visit that were delivered from fanotify
 * records (live, with the writer), as opposed to the stop() scan. */
uint64_t mon_registry_live_events(struct monitor *m);
