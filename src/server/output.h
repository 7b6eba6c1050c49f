/* output.h - the files a run leaves in its output folder.
 *
 * Owns OUTDIR/log/ in the original Capture-HPC formats (quoted CSV, every
 * field through cap_csv_quote): progress.log, safe.log, malicious.log,
 * error.log, stats.log, one event log per malicious URL or DAC group, and
 * OUTDIR/reports/<name>.json per finished URL.  File names are always made
 * here (cap_url_to_filename + a timestamp), never taken from a client.
 * Log lines are buffered and written whole (output_flush: after each store
 * commit, so a final verdict reaches its log right after its commit, and
 * once per loop iteration), so a killed server leaves whole lines.  The JSON
 * reports are serialised here and written by one writer thread (file
 * creation dominates the cost of a benign URL); a killed server can lose
 * the reports still queued (at most 4096).
 */
#pragma once

#include <stdint.h>
#include <stdio.h>

#include "scheduler.h"

struct output;

struct output_stats {
	uint64_t visiting, visited, safe, malicious, url_error, vm_revert, client_inactivity,
		vm_stalled;
	double avg_revert_seconds;      /* revert (close or client death) to reconnect */
	double avg_visit_seconds;       /* group sent to its result */
	double avg_first_state_change;  /* group sent to its first system-event */
	double visited_urls_per_day;
};

/* Creates OUTDIR/log and OUTDIR/reports and opens the logs for appending. */
int output_open(const char *outdir, struct output **ret);
/* Closes everything (after the queued reports are written); NULL is a no-op. */
void output_close(struct output *o);
/* Writes the buffered log lines (whole lines only).  The server calls it
 * after each store commit and once per loop iteration. */
void output_flush(struct output *o);

/* progress.log line: status is "visiting", "visited" or "error:NAME-minor". */
int output_progress(struct output *o, const char *status, uint32_t group, const char *url,
                    const char *program, uint32_t time);
/* A URL's final line: safe.log ("benign"), malicious.log ("malicious") or
 * error.log ("error:NAME-minor"); errors also go to progress.log. */
int output_final(struct output *o, enum sched_verdict v, uint32_t err, uint32_t minor,
                 uint32_t group, const char *url, const char *program, uint32_t time);
/* error.log: "error:INVALID_URL-<lineno>","nogroup","<text>" (text is cut
 * to 1 KiB). */
int output_invalid_url(struct output *o, unsigned long lineno, const char *text);

/* Writes one event log (log/<%-escaped url or group id>_<ddMMyyyy_HHmmss>.log)
 * holding the given already-quoted CSV lines; *ret_name (optional,
 * malloc'ed) is its path relative to OUTDIR. */
int output_event_log(struct output *o, const char *key, const char *const *lines, size_t n,
                     char **ret_name);

/* Makes a fresh path under OUTDIR/log for an upload of key ("<key>_<date>.zip"),
 * relative to OUTDIR in *ret_rel and absolute in *ret_abs (both malloc'ed). */
int output_upload_name(struct output *o, const char *key, char **ret_rel, char **ret_abs);

/* Writes reports/<name>.json for a finished URL; events are the CSV lines
 * of its visit, evidence the relative paths of its files. */
int output_report(struct output *o, const char *url, const char *program, enum sched_verdict v,
                  uint32_t err, enum sched_algorithm alg, uint32_t group, double started,
                  double finished, const char *const *events, size_t n_events,
                  const char *const *evidence, size_t n_evidence);

/* Appends one stats.log row in the original's format (Stats.java): the
 * header line "time","visiting",...,"visitedUrlsPerDay" first if the file is
 * empty, then the values, time as "MMM d, yyyy h:mm:ss a". */
int output_stats(struct output *o, const struct output_stats *s);
