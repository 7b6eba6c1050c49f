/* fuzz-urllist: the URL list line parser and the escaping helpers.
 * Invariant: an accepted entry's URL validates again and is bounded. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "urllist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cap_url_entry e;
	const char *reason = NULL;
	char *line, *s = NULL;

	if (size > 3 * CAP_URL_MAX)
		return 0;
	line = malloc(size + 1);
	if (!line)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	int r = cap_urllist_parse_line(line, &e, &reason);
	if (r == CAP_URLLINE_ENTRY) {
		if (cap_url_validate(e.url, &reason) != 0 || strlen(e.url) > CAP_URL_MAX)
			abort();
		if (e.has_priority && !(e.priority >= 0.0 && e.priority <= 1.0))
			abort();
		if (e.has_client && !cap_program_name_valid(e.client))
			abort();
		if (cap_url_to_filename(e.url, 200, &s) != 0 || strlen(s) > 200 || strchr(s, '/'))
			abort();
		free(s);
	} else if (r < 0 && (r != -EINVAL || !reason) && r != -ENOMEM) {
		abort();
	}
	if (cap_xml_escape(line, &s) == 0) {
		if (strpbrk(s, "<>\"'\n\r"))
			abort();
		free(s);
	}
	if (cap_csv_quote(line, &s) == 0)
		free(s);
	unsigned char *d = NULL;
	size_t dl;
	if (cap_base64_decode(line, strlen(line), 4096, &d, &dl) == 0) {
		size_t el;
		if (cap_base64_encode(d, dl, &s, &el) != 0 || strcmp(s, line) != 0)
			abort(); /* strict decoding is canonical */
		free(s);
		free(d);
	}
	free(line);
	return 0;
}
