/* escape.c - XML/CSV/file-name escaping, URL unescaping, base64 (see escape.h). */
#include "escape.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "macro.h"

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid.
 * Rejects overlongs, surrogates and code points > U+10FFFF. */
static size_t utf8_seq_len(const unsigned char *s)
{
	unsigned char c = s[0];
	uint32_t cp;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
		return 0;
	return n;
}

int cap_xml_escape_append(struct cap_buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	int r = 0;

	while (*p && r == 0) {
		const char *rep = NULL;
		switch (*p) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&apos;"; break;
		case '\t': rep = "&#9;"; break;
		case '\n': rep = "&#10;"; break;
		case '\r': rep = "&#13;"; break;
		default: break;
		}
		if (rep) {
			r = cap_buf_puts(b, rep);
			p++;
			continue;
		}
		if (*p < 0x20 || *p == 0x7f) {
			r = cap_buf_append(b, "?", 1);
			p++;
			continue;
		}
		size_t n = utf8_seq_len(p);
		if (n == 0) {
			r = cap_buf_append(b, "?", 1);
			p++;
			continue;
		}
		r = cap_buf_append(b, p, n);
		p += n;
	}
	return r;
}

int cap_xml_escape(const char *s, char **ret)
{
	struct cap_buf b = {0};
	int r = cap_xml_escape_append(&b, s);
	if (r < 0) {
		cap_buf_done(&b);
		return r;
	}
	char *out = cap_buf_steal(&b, NULL);
	if (!out)
		return -ENOMEM;
	*ret = out;
	return 0;
}

int cap_csv_quote(const char *s, char **ret)
{
	struct cap_buf b = {0};
	int r = cap_buf_append(&b, "\"", 1);

	for (const unsigned char *p = (const unsigned char *)s; *p && r == 0; p++) {
		switch (*p) {
		case '"': r = cap_buf_puts(&b, "\"\""); break;
		case '\\': r = cap_buf_puts(&b, "\\\\"); break;
		case '\n': r = cap_buf_puts(&b, "\\n"); break;
		case '\r': r = cap_buf_puts(&b, "\\r"); break;
		case '\t': r = cap_buf_puts(&b, "\\t"); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				r = cap_buf_printf(&b, "\\x%02x", *p);
			else
				r = cap_buf_append(&b, p, 1);
		}
	}
	if (r == 0)
		r = cap_buf_append(&b, "\"", 1);
	if (r < 0) {
		cap_buf_done(&b);
		return r;
	}
	char *out = cap_buf_steal(&b, NULL);
	if (!out)
		return -ENOMEM;
	*ret = out;
	return 0;
}

/* FNV-1a 64: not cryptographic; only keeps truncated names distinct. */
static uint64_t fnv1a64(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ull;
	}
	return h;
}

static bool fname_keep(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-';
}

int cap_url_to_filename(const char *url, size_t max_len, char **ret)
{
	static const char hex[] = "0123456789ABCDEF";
	const size_t suffix = 17; /* "~" + 16 hex */
	char *out;
	size_t o = 0;
	bool cut = false;

	if (max_len < 32 || max_len > 255)
		return -EINVAL;
	out = malloc(max_len + 1);
	if (!out)
		return -ENOMEM;
	for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
		size_t need = fname_keep(*p) ? 1 : 3;
		if (o + need > max_len) {
			cut = true;
			break;
		}
		if (need == 1)
			out[o++] = (char)*p;
		else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	if (cut) {
		o = MIN(o, max_len - suffix);
		/* do not leave half an escape behind */
		if (o >= 1 && out[o - 1] == '%')
			o -= 1;
		else if (o >= 2 && out[o - 2] == '%')
			o -= 2;
		snprintf(out + o, max_len + 1 - o, "~%016llx", (unsigned long long)fnv1a64(url));
		o += suffix;
	}
	out[o] = '\0';
	if (o == 0 || strcmp(out, ".") == 0 || strcmp(out, "..") == 0) {
		/* "", "." and ".." are not file names */
		static const char *const alt[] = {"%00", "%2E", "%2E%2E"};
		memcpy(out, alt[o], strlen(alt[o]) + 1);
	}
	*ret = out;
	return 0;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int cap_url_unescape(const char *s, bool plus_is_space, char **ret)
{
	size_t n = strlen(s);
	char *out = malloc(n + 1);
	size_t o = 0;

	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			int hi = i + 2 < n + 1 ? hexval((unsigned char)s[i + 1]) : -1;
			int lo = hi >= 0 ? hexval((unsigned char)s[i + 2]) : -1;
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				free(out);
				return -EINVAL;
			}
			out[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else if (c == '+' && plus_is_space)
			out[o++] = ' ';
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	*ret = out;
	return 0;
}

int cap_url_form_encode(const char *s, char **ret)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	if (n > SIZE_MAX / 3 - 1)
		return -EMSGSIZE;
	char *out = malloc(3 * n + 1);
	size_t o = 0;
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '*' || c == '_' || c == '-')
			out[o++] = (char)c;
		else if (c == ' ')
			out[o++] = '+';
		else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	*ret = out;
	return 0;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int cap_base64_encode(const void *data, size_t n, char **ret, size_t *ret_len)
{
	const unsigned char *in = data;
	size_t olen, o = 0;
	char *out;

	if (n > (size_t)768 * 1024 * 1024)
		return -EMSGSIZE;
	olen = (n + 2) / 3 * 4;
	out = malloc(olen + 1);
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = b64[(v >> 18) & 63];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? b64[v & 63] : '=';
	}
	out[o] = '\0';
	*ret = out;
	if (ret_len)
		*ret_len = o;
	return 0;
}

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int cap_base64_decode(const char *s, size_t len, size_t max_out, unsigned char **ret,
		      size_t *ret_len)
{
	if (len % 4 != 0)
		return -EINVAL;
	size_t pad = 0;
	if (len >= 4 && s[len - 1] == '=')
		pad = s[len - 2] == '=' ? 2 : 1;
	size_t olen = len / 4 * 3 - pad;
	if (olen > max_out)
		return -EMSGSIZE;
	unsigned char *out = malloc(olen ? olen : 1);
	if (!out)
		return -ENOMEM;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		int v[4];
		for (int k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)s[i + (size_t)k];
			if (c == '=' && last && (size_t)k >= 4 - pad)
				v[k] = 0;
			else
				v[k] = b64val(c);
			if (v[k] < 0) {
				free(out);
				return -EINVAL;
			}
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
			     (uint32_t)v[3];
		/* non-canonical: bits below the padding must be zero */
		if (last && ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff)))) {
			free(out);
			return -EINVAL;
		}
		out[o++] = (unsigned char)(w >> 16);
		if (!(last && pad == 2))
			out[o++] = (unsigned char)(w >> 8);
		if (!(last && pad >= 1))
			out[o++] = (unsigned char)w;
	}
	*ret = out;
	*ret_len = o;
	return 0;
}
