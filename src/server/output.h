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
 * creation dominates the cost of a benign URL).  A URL's final line and
 * report are rendered before its store commit and journaled in the store
 * with it (store_output_add); the server drops the journal entry once the
 * report is written (output_reports_take), and `resume` writes whatever a
 * killed server left in the journal, so a crash loses neither.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "scheduler.h"

struct output;

/* The logs a final line can go to are numbered below this (output.c). */
#define OUTPUT_LOGS 5

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
/* Renders a URL's final line (with its newline; malloc'ed): for safe.log
 * ("benign"), malicious.log ("malicious") or error.log ("error:NAME-minor"),
 * which *ret_log names for output_final_line. */
int output_final_render(enum sched_verdict v, uint32_t err, uint32_t minor, uint32_t group,
                        const char *url, const char *program, uint32_t time, int *ret_log,
                        char **ret_line);
/* Appends a rendered final line to its log (errors also to progress.log);
 * -EINVAL for another log or anything but one whole line. */
int output_final_line(struct output *o, int log, const char *line);
/* Marks present[i] for each of the n rendered final lines that log already
 * holds (resume: a kill may come between a commit and its log line). */
int output_lines_present(struct output *o, int log, const char *const *lines, size_t n,
                         bool *present);
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

/* Renders reports/<name>.json of a finished URL: *ret_name (a fresh file
 * name) and *ret_text (NUL-terminated), both malloc'ed; events are the CSV
 * lines of its visit, evidence the relative paths of its files. */
int output_report_render(struct output *o, const char *url, const char *program,
                         enum sched_verdict v, uint32_t err, enum sched_algorithm alg,
                         uint32_t group, double started, double finished,
                         const char *const *events, size_t n_events,
                         const char *const *evidence, size_t n_evidence, char **ret_name,
                         char **ret_text);
/* Queues a rendered report for the writer thread (takes name and text);
 * blocks while 4096 are waiting.  id comes back from output_reports_take
 * once the file is written. */
void output_report_queue(struct output *o, int64_t id, char *name, char *text);
/* The ids of the reports written since the last call (*ret_ids malloc'ed,
 * may be NULL when 0 is returned).  A report that could not be written is
 * never returned: its journal entry stays for the next resume. */
size_t output_reports_take(struct output *o, int64_t **ret_ids);
/* Waits until every queued report is written (or failed). */
void output_reports_wait(struct output *o);
/* Writes a journaled report again (resume), replacing a partial file;
 * -EINVAL for a name this file would not have made. */
int output_report_rewrite(struct output *o, const char *name, const char *text, size_t len);

/* Appends one stats.log row in the original's format (Stats.java): the
 * header line "time","visiting",...,"visitedUrlsPerDay" first if the file is
 * empty, then the values, time as "MMM d, yyyy h:mm:ss a". */
int output_stats(struct output *o, const struct output_stats *s);
