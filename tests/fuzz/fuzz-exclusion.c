/* fuzz-exclusion.c - libFuzzer target for the exclusion-list parser and
 * matcher (src/lib/exclusion.c): the input is loaded as a list, then a few
 * events (and the input's own first line as subject/object) are matched. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "exclusion.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct excl_list *l = NULL;
	char probe[256];
	size_t n = size < sizeof(probe) - 1 ? size : sizeof(probe) - 1;

	if (excl_list_new(&l) < 0)
		return 0;
	(void)excl_list_load_buffer(l, "fuzz", (const char *)data, size, NULL, NULL);
	memcpy(probe, data, n);
	probe[n] = '\0';
	(void)excl_list_match(l, "Write", "/usr/bin/x", "/tmp/a.tmp");
	(void)excl_list_match(l, "write", probe, probe);
	(void)excl_list_match(l, probe, "/bin/sh", "");
	excl_list_free(l);
	return 0;
}
