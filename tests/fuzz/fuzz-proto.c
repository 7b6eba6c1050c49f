/* fuzz-proto: the message decoder (both directions) behind the framer.
 * Invariant: whatever decodes re-encodes, and the encoding decodes again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *msg, size_t len, enum cap_dir dir)
{
	struct cap_msg m, again;
	char err[128];
	char *buf = NULL;
	size_t blen = 0;
	int r = dir == CAP_DIR_TO_SERVER ? cap_msg_decode_from_client(msg, len, &m, err, sizeof(err))
					 : cap_msg_decode_from_server(msg, len, &m, err, sizeof(err));
	if (r < 0)
		return;
	r = dir == CAP_DIR_TO_SERVER ? cap_msg_encode_to_server(&m, &buf, &blen)
				     : cap_msg_encode_to_client(&m, &buf, &blen);
	if (r < 0)
		abort();
	size_t body = blen - (dir == CAP_DIR_TO_SERVER ? 2 : 1);
	if (memchr(buf, '\n', body) || memchr(buf, '\r', body) || memchr(buf, '\0', body))
		abort();
	r = dir == CAP_DIR_TO_SERVER ? cap_msg_decode_from_client(buf, body, &again, err, sizeof(err))
				     : cap_msg_decode_from_server(buf, body, &again, err, sizeof(err));
	if (r < 0 || again.type != m.type)
		abort();
	cap_msg_clear(&again);
	cap_msg_clear(&m);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cap_framer f;
	const char *msg;
	size_t len;

	if (size < 1)
		return 0;
	/* first byte: direction; the rest is the stream */
	enum cap_dir dir = (data[0] & 1) ? CAP_DIR_TO_CLIENT : CAP_DIR_TO_SERVER;
	cap_framer_init(&f, dir == CAP_DIR_TO_SERVER ? CAP_FRAME_LINE : CAP_FRAME_NUL, 64 * 1024);
	if (cap_framer_feed(&f, data + 1, size - 1) == 0) {
		int r;
		while ((r = cap_framer_next(&f, &msg, &len)) == 1)
			check(msg, len, dir);
		/* an unterminated tail is parsed too */
		if (r == 0 && cap_framer_pending(&f) > 0 && cap_framer_feed(&f, dir == CAP_DIR_TO_SERVER ? "\n" : "", 1) == 0)
			while (cap_framer_next(&f, &msg, &len) == 1)
				check(msg, len, dir);
	}
	cap_framer_done(&f);
	return 0;
}
