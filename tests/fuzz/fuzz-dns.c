/* fuzz-dns (owner: lead): the download stub resolver's answer parser
 * (src/client/plugins/dns.c) on bytes a hostile resolver or a spoofer sends,
 * and the query builder on arbitrary names.  Invariants: only the documented
 * results; a query is built only for a name of host-name characters. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2 || size > DNS_MSG_MAX)
		return 0;
	/* the id the fuzzer wrote, so that it reaches past the header check */
	uint16_t id = (uint16_t)(data[0] << 8 | data[1]);
	struct in_addr a;
	int r = dns_parse_a(data, size, id, "www.example.test", &a);
	if (r != 0 && r != -ENOENT && r != -EAGAIN && r != -EBADMSG)
		abort();

	char name[300];
	size_t n = size < sizeof(name) - 1 ? size : sizeof(name) - 1;
	memcpy(name, data, n);
	name[n] = '\0';
	uint8_t q[DNS_NAME_MAX + 32];
	int k = dns_build_query(name, id, q, sizeof(q));
	if (k > 0) {
		if ((size_t)k > sizeof(q) || strlen(name) > DNS_NAME_MAX + 1)
			abort();
		for (const char *p = name; *p; p++)
			if (!(*p == '.' || *p == '-' || *p == '_' || (*p >= '0' && *p <= '9') ||
			      (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
				abort();
	} else if (k != -EINVAL) {
		abort();
	}
	return 0;
}
