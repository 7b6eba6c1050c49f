/* fuzz-calibrate.c - libFuzzer target for the calibration output
 * (src/client/calibrate.c), whose input comes out of the sandbox: the input
 * is split at NUL bytes into an event's type byte, action, process, object1
 * and object2; the event is recorded and the output printed, and every line
 * of it must be a comment or a rule that loads and excludes the event it was
 * made from (a file name cannot add a line, a field, or a rule that does not
 * match). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calibrate.h"
#include "exclusion.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 16384)
		return 0;
	char *copy = malloc(size + 5);
	if (!copy)
		return 0;
	memcpy(copy + 1, data + 1, size - 1);
	memset(copy + size, 0, 5);
	const char *f[4];
	const char *p = copy + 1, *end = copy + size;
	for (int i = 0; i < 4; i++) {
		f[i] = p;
		p += strlen(p) + (p < end ? 1 : 0);
		if (p > end)
			p = end;
	}
	struct cap_event ev;
	cap_event_init(&ev, (enum cap_event_type)(data[0] % CAP_EV_TYPE_MAX), f[0], f[1], f[2],
		       f[3]);
	struct calib *c = NULL;
	if (calib_new(2, &c) == 0) {
		calib_program(c, "p", "p", 1);
		(void)calib_record(c, "p", "p", data[0] & 1, "http://a/", &ev);
		char *out = NULL;
		size_t len = 0;
		FILE *o = open_memstream(&out, &len);
		if (o) {
			calib_print(c, o, "/x");
			fclose(o);
			struct excl_list *l = NULL;
			if (excl_list_new(&l) == 0) {
				for (char *line = strtok(out, "\n"); line;
				     line = strtok(NULL, "\n")) {
					char err[256];
					if (line[0] != '#' &&
					    excl_list_add_line(l, line, err, sizeof(err)) != 0) {
						/* neither a comment nor a rule */
						fprintf(stderr, "bad line: %s\n%s\n", line, err);
						abort();
					}
				}
				excl_list_free(l);
			}
			if (out && strstr(out, "(CHECK:"))
				abort(); /* a rule that does not exclude its own event */
			free(out);
		}
		calib_free(c);
	}
	free(copy);
	return 0;
}
