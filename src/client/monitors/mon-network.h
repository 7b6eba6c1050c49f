/* mon-network.h - the network monitor (sock_diag polling + the visit's pcap);
 * see mon-network.c for the design and docs/monitors.md "Network monitor"
 * for the events. */
#pragma once

#include "monitor.h"

/* The vtable ("network"), for the static monitor table. */
extern const struct monitor_ops mon_network_ops;

#define MON_NETWORK_DEFAULT_INTERVAL_MS 50

/* Polling interval of the sock_diag dumps (1..10000 ms); effective at the
 * next start(). */
int mon_network_set_interval(struct monitor *m, unsigned interval_ms);

/* The pcap file of the visit (written by sandbox_capture_*; it must be
 * complete when stop() runs).  stop() reads it and reports the flows that
 * polling missed.  NULL = none.  The string is copied. */
int mon_network_set_pcap(struct monitor *m, const char *path);

/* Takes one sock_diag snapshot now and reports the differences (what the
 * timer does); exported for tests and benchmarks. */
int mon_network_poll(struct monitor *m);
