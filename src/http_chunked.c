/*
 * http_chunked.c - reading past a chunked request body (RFC 9112 7.1).
 *
 * porter serves files and never uses a request body, but it must find
 * where one ends to stay in step with the client, and must find it
 * exactly where a proxy in front of it does. Like http_parse.c: a
 * byte-at-a-time state machine, resumable at any byte, no I/O.
 */

#include <sys/types.h>

#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "http_chars.h"
#include "http_parse.h"

/*
 * RFC 9112 7.1. Extensions are checked against their grammar rather than
 * skipped to the line end: a server that guesses differently from a
 * proxy in front of it about where a chunk ends can be made to see a
 * request the proxy never saw.
 */
enum http_chunk_state {
	C_SIZE0 = 0,		/* first HEXDIG of a chunk-size */
	C_SIZE,
	C_SIZE_WS,		/* BWS after the size, ";" must follow */
	C_EXT_NAME0,		/* after ";" */
	C_EXT_NAME,
	C_EXT_NAME_WS,		/* BWS after a name: "=" or ";" follows */
	C_EXT_VAL0,		/* after "=" */
	C_EXT_TOKEN,
	C_EXT_QS,		/* inside a quoted-string */
	C_EXT_QP,		/* after a backslash in it */
	C_EXT_QEND,		/* after the closing quote */
	C_EXT_VAL_WS,		/* BWS after a value: ";" follows */
	C_SIZE_LF,		/* CR of the size line seen */
	C_DATA,
	C_DATA_CR,
	C_DATA_LF,
	C_TRAILER0,		/* start of a trailer line, or the end */
	C_TRAILER_NAME,
	C_TRAILER_VALUE,
	C_TRAILER_LF,
	C_END_LF,
	C_DONE,
	C_ERROR
};

/* The longest size or trailer line, and all trailer lines together. */
#define HTTP_CHUNK_LINE_MAX	4096
#define HTTP_CHUNK_TRAILER_MAX	(16 * 1024)

void
http_chunked_init(struct http_chunked *c)
{
	memset(c, 0, sizeof(*c));
	c->state = C_SIZE0;
}

ssize_t
http_chunked_skip(struct http_chunked *c, const char *buf, size_t len,
    int *done)
{
	const unsigned char *p = (const unsigned char *)buf;
	size_t		 i = 0, n;
	unsigned char	 ch;
	int		 d;

	*done = 0;
	if (c->state == C_ERROR)
		return -1;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;

	while (i < len && c->state != C_DONE) {
		if (c->state == C_DATA) {
			n = len - i;
			if (n > c->remaining)
				n = c->remaining;
			i += n;
			c->remaining -= n;
			/* Saturates at INT64_MAX: callers compare it with
			 * an int64_t limit, where a wrap would pass. */
			if (__builtin_add_overflow(c->total, (uint64_t)n,
			    &c->total) || c->total > (uint64_t)INT64_MAX)
				c->total = (uint64_t)INT64_MAX;
			if (c->remaining == 0)
				c->state = C_DATA_CR;
			continue;
		}

		ch = p[i++];
		if (c->state <= C_SIZE_LF) {
			if (++c->linelen > HTTP_CHUNK_LINE_MAX)
				goto fail;
		} else if (c->state >= C_TRAILER0 && c->state <= C_END_LF) {
			/* past the last chunk, remaining counts trailers */
			if (++c->linelen > HTTP_CHUNK_LINE_MAX ||
			    ++c->remaining > HTTP_CHUNK_TRAILER_MAX)
				goto fail;
		}

		switch (c->state) {
		case C_SIZE0:
			if ((d = http_hexval(ch)) == -1)
				goto fail;
			c->remaining = (uint64_t)d;
			c->state = C_SIZE;
			break;
		case C_SIZE:
			if ((d = http_hexval(ch)) != -1) {
				/* keep it within 63 bits: it fits an off_t */
				if (c->remaining > (uint64_t)INT64_MAX >> 4)
					goto fail;
				c->remaining = c->remaining << 4 | (uint64_t)d;
			} else if (ch == ';')
				c->state = C_EXT_NAME0;
			else if (http_ows(ch))
				c->state = C_SIZE_WS;
			else if (ch == '\r')
				c->state = C_SIZE_LF;
			else if (ch == '\n')
				goto size_done;
			else
				goto fail;
			break;
		case C_SIZE_WS:
		case C_EXT_VAL_WS:
			if (ch == ';')
				c->state = C_EXT_NAME0;
			else if (!http_ows(ch))
				goto fail;
			break;
		case C_EXT_NAME0:
			if (http_tchar(ch))
				c->state = C_EXT_NAME;
			else if (!http_ows(ch))
				goto fail;
			break;
		case C_EXT_NAME:
		case C_EXT_TOKEN:
		case C_EXT_QEND:
			if (http_tchar(ch) && c->state != C_EXT_QEND)
				;
			else if (ch == ';')
				c->state = C_EXT_NAME0;
			else if (http_ows(ch))
				c->state = c->state == C_EXT_NAME ?
				    C_EXT_NAME_WS : C_EXT_VAL_WS;
			else if (ch == '=' && c->state == C_EXT_NAME)
				c->state = C_EXT_VAL0;
			else if (ch == '\r')
				c->state = C_SIZE_LF;
			else if (ch == '\n')
				goto size_done;
			else
				goto fail;
			break;
		case C_EXT_NAME_WS:
			if (ch == '=')
				c->state = C_EXT_VAL0;
			else if (ch == ';')
				c->state = C_EXT_NAME0;
			else if (!http_ows(ch))
				goto fail;
			break;
		case C_EXT_VAL0:
			if (ch == '"')
				c->state = C_EXT_QS;
			else if (http_tchar(ch))
				c->state = C_EXT_TOKEN;
			else if (!http_ows(ch))
				goto fail;
			break;
		case C_EXT_QS:
			if (ch == '"')
				c->state = C_EXT_QEND;
			else if (ch == '\\')
				c->state = C_EXT_QP;
			else if (!http_vchar(ch) && !http_ows(ch))
				goto fail;
			break;
		case C_EXT_QP:
			if (!http_vchar(ch) && !http_ows(ch))
				goto fail;
			c->state = C_EXT_QS;
			break;
		case C_SIZE_LF:
			if (ch != '\n')
				goto fail;
 size_done:
			c->linelen = 0;
			c->state = c->remaining == 0 ? C_TRAILER0 : C_DATA;
			break;
		case C_DATA_CR:
			if (ch == '\r')
				c->state = C_DATA_LF;
			else if (ch == '\n') {
				c->linelen = 0;
				c->state = C_SIZE0;
			} else
				goto fail;
			break;
		case C_DATA_LF:
			if (ch != '\n')
				goto fail;
			c->linelen = 0;
			c->state = C_SIZE0;
			break;
		case C_TRAILER0:
			if (ch == '\r')
				c->state = C_END_LF;
			else if (ch == '\n')
				goto body_done;
			else if (http_tchar(ch))
				c->state = C_TRAILER_NAME;
			else
				goto fail;
			break;
		case C_TRAILER_NAME:
			if (ch == ':')
				c->state = C_TRAILER_VALUE;
			else if (!http_tchar(ch))
				goto fail;
			break;
		case C_TRAILER_VALUE:
			if (ch == '\r')
				c->state = C_TRAILER_LF;
			else if (ch == '\n') {
				c->linelen = 0;
				c->state = C_TRAILER0;
			} else if (!http_vchar(ch) && !http_ows(ch))
				goto fail;
			break;
		case C_TRAILER_LF:
			if (ch != '\n')
				goto fail;
			c->linelen = 0;
			c->state = C_TRAILER0;
			break;
		case C_END_LF:
			if (ch != '\n')
				goto fail;
 body_done:
			c->remaining = 0;
			c->linelen = 0;
			c->state = C_DONE;
			break;
		default:
			goto fail;
		}
	}
	if (c->state == C_DONE)
		*done = 1;
	return (ssize_t)i;

 fail:
	c->state = C_ERROR;
	return -1;
}
