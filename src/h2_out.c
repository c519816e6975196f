/*
 * h2_out.c - HTTP/2's output side (h2_int.h): frames nghttp2 wants to
 * send are gathered in one output buffer and written through the
 * transport; DATA from a file goes out as nghttp2 "no-copy" frames,
 * its payload sent from the file behind the frame header or read in
 * behind it (h2_copies). And a stream's response: http_handle()'s
 * answer turned into HEADERS and a data source for its DATA.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "h2_int.h"
#include "rep.h"
#include "xprt_tls.h"

#define H2_OUT_MIN	16384	/* the output buffer, grown for a big frame */
#define H2_OUT_FLUSH	65536	/* gather at most this much before writing */
#define H2_FRAME_HD	9	/* a frame header (RFC 9113 4.1) */
#define H2_PAYLOAD	16384	/* DATA payload: nghttp2's own choice */
#define H2_RECORD	16384	/* TLS plaintext record (RFC 8446 5.1) */

static struct log_limit h2_ll_shrank = LOG_LIMIT_INIT(LOG_LVL_WARN,
    "file shrank while sending (HTTP/2)");

/* ---- output --------------------------------------------------------------------- */

/*
 * Room for len more bytes in the output buffer; -1: write first (file
 * bytes are due, or H2_OUT_FLUSH bytes are gathered: the buffer holds
 * no more, unless one frame is larger).
 */
static int
h2_ob_room(struct h2_sess *s, size_t len)
{
	size_t cap, unsent;

	if (s->tail != NULL)
		return -1;	/* file bytes go first */
	if (s->ob == NULL) {
		/* A frame of half the minimum or more starts a bulk transfer
		 * (TLS copies file bytes): a whole gather at once, no regrowth. */
		cap = len < H2_OUT_MIN / 2 ? H2_OUT_MIN :
		    len > H2_OUT_FLUSH ? len : H2_OUT_FLUSH;
		s->ob = xmalloc(cap);
		s->ob_cap = cap;
		s->ob_len = s->ob_off = 0;
	}
	unsent = s->ob_len - s->ob_off;
	if (unsent > 0 && unsent + len > H2_OUT_FLUSH)
		return -1;
	if (s->ob_len + len <= s->ob_cap)
		return 0;
	if (s->ob_off > 0) {
		memmove(s->ob, s->ob + s->ob_off, unsent);
		s->ob_len = unsent;
		s->ob_off = 0;
	}
	if (s->ob_len + len > s->ob_cap) {
		for (cap = s->ob_cap; cap < s->ob_len + len; cap *= 2)
			;
		s->ob = xrealloc(s->ob, cap);
		s->ob_cap = cap;
	}
	return 0;
}

ssize_t
h2_send_cb(nghttp2_session *ng, const uint8_t *data, size_t len, int flags,
    void *arg)
{
	struct h2_sess *s = arg;

	if (h2_ob_room(s, len) == -1)
		return NGHTTP2_ERR_WOULDBLOCK;
	memcpy(s->ob + s->ob_len, data, len);
	s->ob_len += len;
	return (ssize_t)len;
}

/*
 * Are file bytes copied into the output buffer? Yes unless the
 * transport sends from a file itself: the kernel socket, kernel TLS
 * (settled by the handshake, before the session starts).
 */
static int
h2_copies(struct h2_sess *s)
{
	if (!s->copy_known) {
		s->copy = s->c->xp != &xprt_plain &&
		    !xprt_tls_ktls_send(&s->c->xio);
		s->copy_known = 1;
	}
	return s->copy;
}

/*
 * A DATA payload from the file at off into buf (len bytes): 0, or -1
 * when the file has fewer (it shrank) or cannot be read (logged).
 */
static int
h2_file_read(struct h2_stream *st, uint8_t *buf, size_t len, off_t off)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = pread(st->resp.fd, buf + got, len - got, off + (off_t)got);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		log_limited(&h2_ll_shrank, ev_now(conn_loop()), 0,
		    "%s; resetting HTTP/2 stream %d", n == 0 ?
		    "file shrank while sending" : strerror(errno), (int)st->id);
		return -1;
	}
	return 0;
}

/*
 * A no-copy DATA frame: its header now, and its payload either read in
 * behind it (h2_copies) or sent from the file after it (the tail).
 */
int
h2_send_data_cb(nghttp2_session *ng, nghttp2_frame *frame,
    const uint8_t *framehd, size_t length, nghttp2_data_source *source,
    void *arg)
{
	struct h2_sess *s = arg;
	struct h2_stream *st = source->ptr;
	size_t pad = frame->data.padlen;
	int copy = h2_copies(s);

	/* Padding would follow the payload: never asked for (no padding
	 * callback), so at most its length field, framed right anyway. */
	if (pad > 1)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if (h2_ob_room(s, H2_FRAME_HD + pad + (copy ? length : 0)) == -1)
		return NGHTTP2_ERR_WOULDBLOCK;
	/*
	 * Read before anything of the frame is kept: a file that shrank
	 * resets its stream (nghttp2 sends RST_STREAM INTERNAL_ERROR) and
	 * the connection stays framed.
	 */
	if (copy && h2_file_read(st, (uint8_t *)s->ob + s->ob_len +
	    H2_FRAME_HD + pad, length, st->d.nc_off) == -1)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	memcpy(s->ob + s->ob_len, framehd, H2_FRAME_HD);
	s->ob_len += H2_FRAME_HD;
	if (pad > 0)
		s->ob[s->ob_len++] = (char)(pad - 1);
	if (copy) {
		s->ob_len += length;
		return 0;
	}
	s->tail = st;
	st->on_wire = 1;
	s->tail_off = st->d.nc_off;
	s->tail_len = length;
	return 0;
}

/* The file tail is through (or abandoned): its stream may go. */
static void
h2_tail_done(struct h2_sess *s)
{
	struct h2_stream *st = s->tail;

	s->tail = NULL;
	st->on_wire = 0;
	if (st->closed && !st->queued)
		h2_stream_free(st);
}

/*
 * The file ended before the frame did: fill the frame with zeros so the
 * connection stays framed, and reset the stream (RFC 9113 8.1: the
 * response is incomplete).
 */
static void
h2_tail_shrank(struct h2_sess *s)
{
	struct h2_stream *st = s->tail;
	size_t len = s->tail_len;

	log_limited(&h2_ll_shrank, ev_now(conn_loop()), 0,
	    "file shrank while sending; resetting HTTP/2 stream %d",
	    (int)st->id);
	s->tail = NULL;
	(void)h2_ob_room(s, len);
	memset(s->ob + s->ob_len, 0, len);
	s->ob_len += len;
	s->tail = st;
	h2_tail_done(s);
	(void)nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id,
	    NGHTTP2_INTERNAL_ERROR);
}

/*
 * Write what is gathered, asking nghttp2 for more until it has nothing
 * or the socket is full. 0: done or waiting for EPOLLOUT; -1: c closed.
 */
int
h2_out(struct h2_sess *s)
{
	struct conn *c = s->c;
	struct iovec iov;
	ssize_t n;
	int rv;

	for (;;) {
		if (s->ob != NULL && s->ob_len > s->ob_off) {
			iov.iov_base = s->ob + s->ob_off;
			iov.iov_len = s->ob_len - s->ob_off;
			n = c->xp->writev(&c->xio, &iov, 1,
			    s->tail != NULL ? XPRT_MORE : 0);
		} else if (s->tail != NULL) {
			off_t off = s->tail_off;

			/* Only where the transport sends files (h2_copies). */
			n = c->xp->sendfile(&c->xio, s->tail->resp.fd, &off,
			    s->tail_len);
			if (n == IO_CLOSED) {
				h2_tail_shrank(s);
				continue;
			}
			if (n > 0) {
				s->tail_off += n;
				s->tail_len -= (size_t)n;
				s->progress++;
				if (s->tail_len == 0)
					h2_tail_done(s);
				continue;
			}
		} else {
			if (!nghttp2_session_want_write(s->ng))
				break;
			if ((rv = nghttp2_session_send(s->ng)) != 0) {
				log_debug("nghttp2_session_send: %s",
				    nghttp2_strerror(rv));
				conn_close(c);
				return -1;
			}
			if (s->ob == NULL || s->ob_len == s->ob_off) {
				if (s->tail == NULL)
					break;
			}
			continue;
		}
		if (n == IO_AGAIN) {
			conn_want_write(c, 1);
			return c->closed ? -1 : 0;
		}
		if (n < 0) {
			if (errno != EPIPE && errno != ECONNRESET)
				log_debug("send: %s", strerror(errno));
			conn_close(c);
			return -1;
		}
		s->ob_off += (size_t)n;
		if (s->ob_off == s->ob_len)
			s->ob_off = s->ob_len = 0;
	}
	if (s->ob != NULL) {
		/*
		 * All written and nothing more to send: an idle session holds
		 * no buffer. (A busy one keeps it from batch to batch.)
		 */
		free(s->ob);
		s->ob = NULL;
		s->ob_len = s->ob_off = s->ob_cap = 0;
	}
	if (c->io.events & EPOLLOUT)
		conn_want_write(c, 0);
	/*
	 * Everything said, nothing more to hear (after GOAWAY): half-close
	 * and read on until the client closes too, so that bytes it still
	 * sends do not make our close() a reset that destroys the GOAWAY.
	 */
	if (!nghttp2_session_want_read(s->ng) &&
	    !nghttp2_session_want_write(s->ng)) {
		(void)c->xp->shutdown(&c->xio);
		c->state = H2_LINGER;
		conn_timer(c, CONN_T_LINGER);
		conn_discard(c);
		return -1;
	}
	return 0;
}

/* ---- the response ---------------------------------------------------------------- */

static ssize_t
h2_read_cb(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len,
    uint32_t *data_flags, nghttp2_data_source *source, void *arg)
{
	struct h2_stream *st = source->ptr;
	unsigned flags;
	size_t n;

	st->d.copied = h2_copies(st->s);
	n = h2_data_read(&st->d, &st->resp, buf, len, &flags);
	if (flags & H2D_NOCOPY)
		*data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
	if (flags & H2D_EOF)
		*data_flags |= NGHTTP2_DATA_FLAG_EOF;
	st->s->progress++;
	return (ssize_t)n;
}

/*
 * How long a DATA payload may be; nghttp2 then cuts it to the windows.
 * Copied (TLS): the frame ends where a TLS record of the gathered
 * output ends (the transport cuts records every 16384 bytes from the
 * buffer's start), so a response's HEADERS share a record with its
 * first DATA and full frames are full records, with no stray tails.
 */
ssize_t
h2_read_length_cb(nghttp2_session *ng, uint8_t type, int32_t id,
    int32_t conn_window, int32_t stream_window, uint32_t max_frame,
    void *arg)
{
	struct h2_sess *s = arg;
	size_t n = H2_PAYLOAD, room;

	if (h2_copies(s)) {
		room = H2_RECORD - (s->ob != NULL ?
		    (s->ob_len - s->ob_off) % H2_RECORD : 0);
		/* Too little left in this record: fill the next one whole. */
		n = room > H2_FRAME_HD + H2_RECORD / 16 ? room - H2_FRAME_HD :
		    H2_RECORD - H2_FRAME_HD;
	}
	return (ssize_t)(n < max_frame ? n : max_frame);
}

/* Fields that mean nothing in HTTP/2 (RFC 9113 8.2.2): not sent. */
static int
h2_field_skip(const char *name, size_t len)
{
	switch (len) {
	case 7:
		return memcmp(name, "upgrade", 7) == 0;
	case 10:
		return memcmp(name, "connection", 10) == 0 ||
		    memcmp(name, "keep-alive", 10) == 0;
	case 16:
		return memcmp(name, "proxy-connection", 16) == 0;
	case 17:
		return memcmp(name, "transfer-encoding", 17) == 0;
	}
	return 0;
}

/*
 * Neither name nor value is copied by nghttp2: they live in the
 * stream's response buffer (or are constants) until the stream is
 * freed, which is after nghttp2 has packed the HEADERS frame or
 * dropped it, and the buffer does not move once the head is built.
 */
#define H2_NV(n, nl, v, vl)	H2_NVF(n, nl, v, vl, 0)
#define H2_NVF(n, nl, v, vl, f)	((nghttp2_nv){ (uint8_t *)(n), (uint8_t *)(v), \
    (nl), (vl), NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE | (f) })
#define H2_NV_STACK	32	/* fields of a usual response; more go to the heap */
_Static_assert(RESP_HEAD_ROOM >= 4 + COND_DATE_SIZE,
    "the head room holds :status and Date");

/* The Date field's value, formatted once a second. */
static size_t
h2_date(time_t now, char buf[COND_DATE_SIZE])
{
	static time_t last = -1;
	static char date[COND_DATE_SIZE];
	static size_t len;

	if (now != last) {
		len = cond_format_date(now, date);
		last = now;
	}
	memcpy(buf, date, len);
	return len;
}

/*
 * HEADERS from the response's fields ("Name: value\r\n" lines, whose
 * names are lower-cased in place, RFC 9113 8.2.1), then DATA from its
 * body segments. :status and Date go in the head room in front of the
 * fields, which only HTTP/1.1 uses for its status line.
 *
 * The first response of a connection adds nothing to the HPACK table
 * of what we send (RFC 7541 6.2.3 literals; :status is the static
 * table's): an entry costs the connection about 170 bytes for as long
 * as it lives and pays back only if the same field goes out again,
 * which a connection that asks once (curl, a monitor, a link preview)
 * never does. From the second response on, fields are indexed as
 * nghttp2 decides, so a busy connection sends each repeated field as
 * one byte as before. Measured on an idle connection after one
 * request: 1.0 KB less (bench/http2.py's idle case, 21.4 -> 20.4 KB).
 */
static void
h2_submit(struct h2_sess *s, struct h2_stream *st)
{
	struct resp *r = &st->resp;
	nghttp2_data_provider dp, *dpp = NULL;
	nghttp2_nv nvs[H2_NV_STACK], *nv = nvs, *grown;
	char *status = r->buf, *date = r->buf + 4;
	char *p, *end, *colon, *eol, *v;
	size_t nnv = 0, cap = H2_NV_STACK, dlen, i;
	uint8_t once = s->requests > 1 ? 0 : NGHTTP2_NV_FLAG_NO_INDEX;
	int rv;

	status[0] = (char)('0' + r->status / 100 % 10);
	status[1] = (char)('0' + r->status / 10 % 10);
	status[2] = (char)('0' + r->status % 10);
	nv[nnv++] = H2_NV(":status", 7, status, 3);
	nv[nnv++] = H2_NVF("server", 6, "porter", 6, once);
	if ((dlen = h2_date(st->q.now, date)) != 0)
		nv[nnv++] = H2_NVF("date", 4, date, dlen, once);
	p = r->buf + RESP_HEAD_ROOM;
	end = r->buf + r->fields_end;
	while (p < end && (eol = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon == NULL) {
			p = eol + 1;
			continue;
		}
		for (i = 0; p + i < colon; i++)
			if (p[i] >= 'A' && p[i] <= 'Z')
				p[i] = (char)(p[i] + 32);
		if (h2_field_skip(p, (size_t)(colon - p))) {
			p = eol + 1;
			continue;
		}
		v = colon + 1;
		while (v < eol && (*v == ' ' || *v == '\t'))
			v++;
		dlen = (size_t)(eol - v);
		if (dlen > 0 && v[dlen - 1] == '\r')
			dlen--;
		if (nnv == cap) {
			grown = xmalloc(2 * cap * sizeof(*nv));
			memcpy(grown, nv, nnv * sizeof(*nv));
			if (nv != nvs)
				free(nv);
			nv = grown;
			cap *= 2;
		}
		nv[nnv++] = H2_NVF(p, (size_t)(colon - p), v, dlen, once);
		p = eol + 1;
	}
	if (h2_data_length(r) > 0) {
		dp.source.ptr = st;
		dp.read_callback = h2_read_cb;
		dpp = &dp;
	}
	st->answered = 1;
	rv = nghttp2_submit_response(s->ng, st->id, nv, nnv, dpp);
	if (nv != nvs)
		free(nv);
	if (rv != 0) {
		log_debug("nghttp2_submit_response: %s", nghttp2_strerror(rv));
		(void)nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE,
		    st->id, NGHTTP2_INTERNAL_ERROR);
	}
}

/*
 * Over TLS a client reuses the connection for every name the
 * certificate covers (RFC 9113 9.1.1); a name whose site has another
 * certificate was not meant to come here: 421 (RFC 9110 15.5.20).
 */
static int
h2_authority_ok(struct h2_sess *s, struct h2_stream *st)
{
	const struct http_span *a = &st->hr.req.known[HTTP_H_HOST];
	const char *p = st->hr.hb + a->off, *e;
	char host[256];
	size_t len;

	if (s->c->xp != &xprt_tls || a->off == 0 || a->len == 0)
		return 1;
	if (p[0] == '[') {
		e = memchr(p, ']', a->len);
		len = e != NULL ? (size_t)(e - p) + 1 : a->len;
	} else {
		e = memchr(p, ':', a->len);
		len = e != NULL ? (size_t)(e - p) : a->len;
	}
	if (len >= sizeof(host))
		return 1;	/* no site has such a name: the default's */
	memcpy(host, p, len);
	host[len] = '\0';
	return xprt_tls_covers(&s->c->xio, host);
}

void
h2_answer_stream(struct h2_sess *s, struct h2_stream *st)
{
	struct resp *r = &st->resp;

	st->q.h = &st->hr.req;
	st->q.buf = st->hr.hb;
	st->q.peer = &s->c->peer.sa;
	st->q.now = ev_time(conn_loop());
	st->q.tls = s->c->xp != &xprt_plain;	/* HSTS, redirect_https */
	st->q.lim_state = s->c->lim_state;	/* client limits (climit.h) */
	st->start = ev_now(conn_loop());
	s->requests++;
	s->c->nreq++;
	if (st->err == 0 && st->hr.status == 0 && !h2_authority_ok(s, st))
		st->err = 421;
	if (st->err != 0 || st->hr.status != 0) {
		r->close = 0;
		http_error(&st->q, r, st->err != 0 ? st->err : st->hr.status);
	} else
		http_handle(&st->q, r);
	h2_submit(s, st);
}
