/* calibrate.h - turning the unauthorized events of benign visits into
 * candidate exclusion lines (capture-client --calibrate, docs/
 * exclusion-lists.md "Calibration").
 *
 * Capture-HPC's operators hand-tuned an exclusion list for every guest.  The
 * client's --calibrate mode visits known-benign pages with each program a
 * few times on this host (controller.c drives the visits); every event the
 * program's profile does not exclude is recorded here, grouped by the rule
 * that would exclude it, and printed as that rule with the reason: which
 * program, file, action and writer, in how many rounds and on how many
 * URLs, and an example.  A candidate is never applied: the operator reads
 * it, narrows it if needed and adds it to etc/exclusion/<profile>/.
 *
 * Everything recorded comes out of the sandbox: objects are shaped into
 * regexes whose every non-alphanumeric byte is escaped (a newline in a file
 * name cannot start a new rule line), examples in the comments are printed
 * with control bytes as \xNN, and both are bounded. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "event.h"
#include "urllist.h"

#define CALIB_MAX_RULES	 512  /* distinct candidates kept (more are counted) */
#define CALIB_SHAPE_MAX	 1024 /* bytes of a shaped regex */
#define CALIB_MAX_ROUNDS 64

#define CALIB_MAX_ITEMS 256

struct calib;

/* One line of a calibration list: a benign URL and the program to visit it
 * with (the URL list format, url::program; the program is required). */
struct calib_item {
	char url[CAP_URL_MAX + 1];
	char program[CAP_PROGRAM_MAX + 1];
};
/* Reads a calibration list into items (at most max).  A bad line, a line
 * without ::program or more than max lines fail the whole list: -EINVAL
 * (or the errno of the file) with err naming the file and line. */
int calib_read_list(const char *path, struct calib_item *items, size_t max, size_t *ret_n,
		    char *err, size_t errlen);

int calib_new(unsigned rounds, struct calib **ret);
void calib_free(struct calib *c);

/* Records one unauthorized event of a visit of url by program (whose
 * exclusion profile is profile) in round (0-based).  -E2BIG past
 * CALIB_MAX_RULES distinct candidates (the event is counted as dropped). */
int calib_record(struct calib *c, const char *program, const char *profile, unsigned round,
		 const char *url, const struct cap_event *ev);
/* Records a visit that failed (the page did not load, the program did not
 * start): a calibration with errors proves nothing. */
void calib_error(struct calib *c, const char *program, const char *url, const char *what);
/* Records that program was calibrated (n_urls URLs x the rounds). */
void calib_program(struct calib *c, const char *program, const char *profile, size_t n_urls);

/* Shapes s into a whole-string regex for an exclusion rule: letters and
 * digits stay, every other byte is escaped (\. \/ ... or \x{NN}), and the
 * parts that change from run to run become classes: a hex run of 16 or more
 * ([0-9a-f]{N}), a 6-character mkstemp suffix after '.', '-' or '_' with
 * mixed case or digits ([A-Za-z0-9]{6}), any other run of digits ([0-9]+).
 * -ENAMETOOLONG if it does not fit in len. */
int calib_shape(const char *s, char *out, size_t len);

/* Prints every candidate (comments + rule line) grouped by program and
 * file, then the errors; returns the number of candidates.  exclusion_dir
 * names the folder in the comments. */
size_t calib_print(const struct calib *c, FILE *f, const char *exclusion_dir);
/* Candidates, errors recorded. */
size_t calib_candidates(const struct calib *c);
size_t calib_errors(const struct calib *c);
