/* fuzz-cdp (owner: vischrome): the DevTools pipe framing and message
 * accessors (src/client/plugins/cdp.c) on bytes a hostile browser sends.
 * Invariants: every message handed out is a JSON object, a message over the
 * bound is -EMSGSIZE, nothing else is returned. */
#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cdp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];
	struct cdp *c = NULL;
	if (size > 65536 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	if (cdp_new(sv[0], 4096, &c) < 0) {
		close(sv[1]);
		return 0;
	}
	if (size && write(sv[1], data, size) != (ssize_t)size)
		abort();
	close(sv[1]);
	for (int rounds = 0; rounds < 1000; rounds++) {
		int r = cdp_read(c);
		if (r < 0 && r != -EPIPE && r != -EMSGSIZE)
			abort();
		struct json_object *m = NULL;
		int k;
		while ((k = cdp_next(c, &m)) != 0) {
			if (k == -EBADMSG)
				continue;
			if (k == -EMSGSIZE)
				break;
			if (k != 1 || !json_object_is_type(m, json_type_object))
				abort();
			(void)cdp_msg_id(m);
			(void)cdp_msg_method(m);
			(void)cdp_msg_session(m);
			(void)cdp_msg_error(m);
			(void)cdp_str(cdp_msg_result(m), "data");
			json_object_put(m);
		}
		if (r < 0 || k == -EMSGSIZE)
			break;
	}
	cdp_free(c);
	return 0;
}
