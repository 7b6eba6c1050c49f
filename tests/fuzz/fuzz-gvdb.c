/* fuzz-gvdb - libFuzzer target for the GVDB reader (gvdb.c): the dconf
 * database comes from the sandbox, i.e. it is hostile.  Every input must
 * parse or be refused without a crash, a leak or an out-of-bounds read;
 * keys and values must respect their bounds and be sorted. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gvdb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gvdb_entry *e = NULL;
	size_t n = 0, skipped = 0;
	char buf[256];
	int r = gvdb_parse(data, size, &e, &n, &skipped);

	if (r < 0 && (e || n))
		abort();
	if (r < 0 && r != -EBADMSG && r != -EPROTONOSUPPORT && r != -EFBIG && r != -ENOMEM)
		abort();
	for (size_t i = 0; i < n; i++) {
		if (strlen(e[i].key) > GVDB_KEY_MAX * 4 || strlen(e[i].value) >= GVDB_VALUE_MAX)
			abort();
		if (i && strcmp(e[i - 1].key, e[i].key) >= 0)
			abort();
	}
	gvdb_entries_free(e, n);
	/* the value printer alone, on the input as the bytes of a few types */
	static const char *const types[] = {"s", "as", "d", "b", "o"};
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		gvdb_format_value(types[t], data, size, buf, sizeof(buf));
		if (strlen(buf) >= sizeof(buf))
			abort();
	}
	return 0;
}
