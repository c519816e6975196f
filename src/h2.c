/*
 * h2.c - HTTP/2 (RFC 9113) on a connection, with nghttp2 doing the
 * framing, HPACK and flow control. porter keeps the event loop and the
 * I/O: bytes read through the transport are fed to
 * nghttp2_session_mem_recv(); frames nghttp2 wants to send are gathered
 * in one output buffer (send_callback) and written through the
 * transport; DATA from a file goes out as nghttp2 "no-copy" frames
 * (send_data_callback), so flow control and SETTINGS_MAX_FRAME_SIZE are
 * still nghttp2's to enforce. On the kernel socket (and under kernel
 * TLS) the 9-byte frame header goes from the buffer and the payload by
 * sendfile. Where the transport must copy anyway (TLS), the payload is
 * read from the file straight into the buffer behind its header, a
 * frame and its header fill one TLS record, and several frames leave
 * in one write.
 *
 * A stream's request is mapped to porter's request record (h2_req.c),
 * queued, and answered at the end of the batch of events like an
 * HTTP/1.1 request (the core's answer queue): http_handle() builds the
 * response, h2_data.c cuts its body into DATA payloads. So HTTP/2 means
 * what HTTP/1.1 means: sites, validators, ranges, gzip, error pages.
 *
 * Over TLS, ALPN "h2" (RFC 9113 3.2) picks HTTP/2, anything else
 * HTTP/1.1. On a plain listener with http2 on, prior knowledge (RFC
 * 9113 3.3): a connection whose first bytes are the client preface
 * speaks HTTP/2, any other HTTP/1.1 (h1.c takes the bytes read so
 * far). No Upgrade: h2c (RFC 9113 deprecates it).
 *
 * Protections: limits nghttp2 enforces (concurrent streams, the
 * stream-reset rate of CVE-2023-44487, CONTINUATION frames per header
 * block, queued SETTINGS/PING acknowledgements) and porter's own (a
 * budget for frames that cost the client nothing, the decoded size of
 * a header block, a stream that makes no progress). Each ends the
 * connection with GOAWAY and its error code, and one log line.
 *
 * Ownership: struct h2_sess is c->h2's; each struct h2_stream is its
 * session's, freed when nghttp2 closes the stream and nothing of it is
 * still queued or on the wire.
 */
#include <sys/mman.h>

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "h2.h"
#include "rep.h"
#include "xprt_tls.h"

#define H2_PREFACE	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN	24
#define H2_READ_BUF	16384
#define H2_OUT_MIN	16384	/* the output buffer, grown for a big frame */
#define H2_OUT_FLUSH	65536	/* gather at most this much before writing */
#define H2_FRAME_HD	9	/* a frame header (RFC 9113 4.1) */
#define H2_PAYLOAD	16384	/* DATA payload: nghttp2's own choice */
#define H2_RECORD	16384	/* TLS plaintext record (RFC 8446 5.1) */
/* Frames that cost the client nothing (PING, SETTINGS, PRIORITY, empty
 * DATA, RST_STREAM) allowed per H2_CHEAP_WINDOW_MS, plus one per request. */
#define H2_CHEAP_MAX	1000
#define H2_CHEAP_WINDOW_MS	10000
/* A header block decoding to more than this many times the limit is a bomb. */
#define H2_HPACK_BOMB	4
/*
 * nghttp2's frame buffer, NGHTTP2_FRAMEBUF_CHUNKLEN in its
 * nghttp2_session.h: a frame header, a pad length and the largest
 * payload. The one allocation of this size while a session is made.
 */
#define H2_FRAMEBUF	(9 + 1 + 16384)
/* Pool slots a session holds: the frame buffer and the stream map's table. */
#define H2_PAGE_BLOCKS	2
#define H2_POOL_SLOTS	64	/* per mapping: the bits of a uint64_t */
/* Pool slot sizes: one page (the stream map), the frame buffer's pages. */
enum { H2_POOL_PAGE, H2_POOL_FRAMEBUF, H2_POOL_CLASSES };
/*
 * Idle this long before the pages go back: giving them back costs a
 * madvise() and, when the session speaks again, a page fault per page
 * touched (a few microseconds), so a connection between the requests
 * of a page load, or answering a steady stream of them, never pays it,
 * and one that does pays it at most four times a second.
 */
#define H2_RELEASE_MS	250

enum { H2_SNIFF, H2_RUN, H2_LINGER };

struct h2_stream {
	struct h2_stream *prev, *next;	/* all of the session's */
	struct h2_stream *qnext;	/* in the session's answer queue */
	struct h2_sess	*s;
	int32_t		 id;
	unsigned	 queued:1;	/* in the answer queue */
	unsigned	 answered:1;	/* a response was submitted */
	unsigned	 closed:1;	/* nghttp2 closed it */
	unsigned	 on_wire:1;	/* the session's file tail is ours */
	unsigned	 malformed:1;	/* reset it at the end of its headers */
	unsigned	 reset:1;	/* RST_STREAM submitted: answer it no more */
	int		 err;		/* answer this status instead */
	uint64_t	 decoded;	/* header bytes decoded, HPACK bomb guard */
	uint64_t	 start;		/* ev_now() ms when it was answered */
	int64_t		 body;		/* request body bytes received */
	struct h2_req	 hr;
	struct request	 q;
	struct resp	 resp;
	struct h2_data	 d;
};

struct h2_sess {
	nghttp2_session	*ng;
	struct conn	*c;
	struct h2_stream *all;		/* every stream not yet freed */
	struct h2_stream *hdr;		/* its header block is being read */
	struct h2_stream *qhead, *qtail;
	size_t		 nstreams;	/* ours, not yet closed */
	char		*ob;		/* bytes to write, NULL when none */
	size_t		 ob_len, ob_off, ob_cap;
	struct h2_stream *tail;		/* file bytes to send after ob */
	off_t		 tail_off;
	size_t		 tail_len;
	uint64_t	 progress;	/* bumps on stream progress: restarts the timer */
	uint64_t	 progress_seen;
	uint32_t	 cheap;		/* see H2_CHEAP_MAX */
	uint32_t	 resets;	/* RST_STREAM from the client, same window */
	uint64_t	 cheap_since;
	uint32_t	 requests;
	unsigned	 terminated:1;	/* GOAWAY submitted: read no more */
	unsigned	 draining:1;	/* GOAWAY NO_ERROR: finish, take no more */
	unsigned	 logged:1;	/* its one line about a bad client */
	unsigned	 creating:1;	/* inside nghttp2_session_server_new3() */
	unsigned	 rel_queued:1;	/* idle, waiting in h2.rel_head's list */
	unsigned	 copy_known:1;	/* copy is set (h2_copies) */
	unsigned	 copy:1;	/* file bytes are copied, not sent from the file */
	/* Memory (h2_mem_*): what nghttp2 holds for this session. */
	size_t		 mem;		/* bytes (malloc_usable_size) */
	size_t		 released;	/* of them, pages given back while idle */
	struct h2_pages {
		void	*p;		/* a pool slot; NULL: none */
		uint8_t	 cls;		/* H2_POOL_* */
		uint8_t	 dead_idle;	/* the frame buffer: no live byte when idle */
	}		 pg[H2_PAGE_BLOCKS];
	struct h2_sess	*rel_prev, *rel_next;
	uint64_t	 idle_since;	/* ev_now() ms it was queued */
};

static struct {
	const struct conf *conf;
	nghttp2_session_callbacks *cbs;
	nghttp2_option	*opt;
	uint32_t	 max_streams;
	uint32_t	 max_header_list;
	size_t		 page;		/* sysconf(_SC_PAGESIZE) */
	/* Idle sessions waiting to give pages back, oldest first. */
	struct h2_sess	*rel_head, *rel_tail;
	int		 rel_armed;	/* the release timer is pending */
	struct h2_pool	*pools[H2_POOL_CLASSES];	/* page slots */
} h2;

static struct log_limit h2_ll_bad = LOG_LIMIT_INIT(LOG_LVL_INFO,
    "HTTP/2 client misbehaving");
static struct log_limit h2_ll_shrank = LOG_LIMIT_INIT(LOG_LVL_WARN,
    "file shrank while sending (HTTP/2)");

static void	 h2_run(struct conn *c);
static void	 h2_stream_free(struct h2_stream *st);

/* ---- bad clients ------------------------------------------------------------ */

/* End the session: GOAWAY with code, then close once it is out. Logged once. */
static void
h2_terminate(struct h2_sess *s, uint32_t code, const char *why)
{
	char addr[NET_ADDRSTRLEN];

	if (s->terminated)
		return;
	s->terminated = 1;
	(void)nghttp2_session_terminate_session(s->ng, code);
	if (why != NULL && !s->logged) {
		s->logged = 1;
		net_addr_format(&s->c->peer.sa, addr, sizeof(addr), 1);
		log_limited(&h2_ll_bad, ev_now(conn_loop()), 0,
		    "HTTP/2 client %s: %s; GOAWAY %s", addr, why,
		    nghttp2_http2_strerror(code));
	}
}

/* A frame that costs the client nothing and us a little. */
static int
h2_cheap(struct h2_sess *s, const char *what)
{
	uint64_t now = ev_now(conn_loop());

	if (now - s->cheap_since >= H2_CHEAP_WINDOW_MS) {
		s->cheap_since = now;
		s->cheap = 0;
		s->resets = 0;
	}
	if (++s->cheap <= H2_CHEAP_MAX + s->requests)
		return 0;
	h2_terminate(s, NGHTTP2_ENHANCE_YOUR_CALM, what);
	return -1;
}

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

static ssize_t
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
static int
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
static int
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

/* ---- streams -------------------------------------------------------------------- */

/*
 * Freed streams are kept for the next ones, with their request and
 * response buffers: a stream is 3 KiB, past the allocator's per-thread
 * cache, and with its two buffers cost three allocations and three
 * frees per request (some 5% of a small request's time, perf). The
 * spares no stream needed for a whole tick are freed by h2_tick(), so
 * they last only as long as the load that made them. Buffers grown
 * past H2_SPARE_BUF (a listing, a long header block) are not kept.
 */
#define H2_SPARE_MAX	512
#define H2_SPARE_BUF	4096

static struct {
	struct h2_stream *list;		/* through ->next */
	unsigned	 n;
	unsigned	 low;		/* fewest in the list since the last tick */
} h2_spare;

static struct h2_stream *
h2_stream_new(struct h2_sess *s, int32_t id)
{
	struct h2_stream *st;
	const size_t hr = offsetof(struct h2_stream, hr);
	const size_t segs = offsetof(struct h2_stream, resp.segs);
	const size_t segs_end = segs + sizeof(st->resp.segs);
	char *buf = NULL;
	size_t buf_cap = 0;

	if ((st = h2_spare.list) != NULL) {
		h2_spare.list = st->next;
		if (--h2_spare.n < h2_spare.low)
			h2_spare.low = h2_spare.n;
		buf = st->resp.buf;
		buf_cap = st->resp.buf_cap;
	} else {
		st = xmalloc(sizeof(*st));
		st->hr.hb = NULL;
		st->hr.hb_cap = 0;
	}
	/*
	 * Zeroed but for the request record (h2_req_init's) and the
	 * response's segment table, filled in order and read up to nsegs:
	 * the two tables are most of the stream's 3 KiB.
	 */
	memset(st, 0, hr);
	memset((char *)st + hr + sizeof(st->hr), 0, segs - hr - sizeof(st->hr));
	memset((char *)st + segs_end, 0, sizeof(*st) - segs_end);
	st->resp.buf = buf;
	st->resp.buf_cap = buf_cap;
	st->s = s;
	st->id = id;
	st->next = s->all;
	if (s->all != NULL)
		s->all->prev = st;
	s->all = st;
	h2_req_init(&st->hr, h2.max_header_list);
	st->resp.fd = -1;
	h2_data_init(&st->d);
	s->nstreams++;
	sb_h2_streams(1);
	return st;
}

static void
h2_stream_free(struct h2_stream *st)
{
	struct resp *r = &st->resp;

	if (st->prev != NULL)
		st->prev->next = st->next;
	else
		st->s->all = st->next;
	if (st->next != NULL)
		st->next->prev = st->prev;
	if (st->s->hdr == st)
		st->s->hdr = NULL;
	resp_file_release(r);
	if (r->release != NULL)
		r->release(r->release_arg);
	free(r->heap);
	if (h2_spare.n < H2_SPARE_MAX) {
		if (r->buf_cap > H2_SPARE_BUF) {
			free(r->buf);
			r->buf = NULL;
			r->buf_cap = 0;
		}
		if (st->hr.hb_cap > H2_SPARE_BUF)
			h2_req_free(&st->hr);
		st->next = h2_spare.list;
		h2_spare.list = st;
		h2_spare.n++;
		return;
	}
	free(r->buf);
	h2_req_free(&st->hr);
	free(st);
}

void
h2_tick(void)
{
	struct h2_stream *st;
	unsigned idle = h2_spare.low;

	/* That many spares were not taken since the last tick: let them go. */
	while (idle-- > 0 && (st = h2_spare.list) != NULL) {
		h2_spare.list = st->next;
		h2_spare.n--;
		free(st->resp.buf);
		h2_req_free(&st->hr);
		free(st);
	}
	h2_spare.low = h2_spare.n;
}

static void
h2_stream_queue(struct h2_sess *s, struct h2_stream *st)
{
	if (st->queued || st->answered)
		return;
	st->queued = 1;
	st->qnext = NULL;
	if (s->qtail != NULL)
		s->qtail->qnext = st;
	else
		s->qhead = st;
	s->qtail = st;
	if (!s->c->queued)
		conn_queue(s->c);
}

/* The access log's line for a stream that was answered. */
static void
h2_log(struct h2_sess *s, struct h2_stream *st)
{
	const struct http_req *h = &st->hr.req;
	struct accesslog_rec rec;

	memset(&rec, 0, sizeof(rec));
	rec.peer = &s->c->peer.sa;
	rec.time = st->q.now;
	if (st->hr.line.len > 0) {
		rec.line = st->hr.hb + st->hr.line.off;
		rec.line_len = st->hr.line.len;
	}
	rec.status = st->resp.status;
	rec.bytes = st->d.framed;
	if (h->known[HTTP_H_REFERER].off != 0) {
		rec.referer = st->hr.hb + h->known[HTTP_H_REFERER].off;
		rec.referer_len = h->known[HTTP_H_REFERER].len;
	}
	if (h->known[HTTP_H_USER_AGENT].off != 0) {
		rec.agent = st->hr.hb + h->known[HTTP_H_USER_AGENT].off;
		rec.agent_len = h->known[HTTP_H_USER_AGENT].len;
	}
	accesslog_append(&rec);
	conn_count_request(st->resp.status, st->d.framed);
	sb_request_time(ev_now(conn_loop()) - st->start);
	sb_h2_request();
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
static ssize_t
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

static void
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

/* ---- nghttp2's callbacks: what the client sent ------------------------------------ */

/*
 * The stream of id: the one whose header block is being read (each
 * of its fields comes in a callback of its own), else nghttp2's map.
 */
static struct h2_stream *
h2_stream_get(struct h2_sess *s, int32_t id)
{
	struct h2_stream *st = s->hdr;

	if (st != NULL && st->id == id && !st->closed)
		return st;
	return nghttp2_session_get_stream_user_data(s->ng, id);
}

/* RFC 9113 8.1.1: a malformed request is a stream error. */
static void
h2_stream_malformed(struct h2_sess *s, struct h2_stream *st)
{
	if (st->reset)
		return;
	st->reset = 1;
	(void)nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id,
	    NGHTTP2_PROTOCOL_ERROR);
}

/*
 * RFC 9113 8.1.1: a request's DATA add up to its Content-Length, if it
 * has one: never more, and (at the end of the stream) as much.
 */
static int
h2_body_fits(const struct h2_stream *st, int end)
{
	int64_t cl = st->hr.req.content_length;

	if (cl < 0)
		return 1;
	return end ? st->body == cl : st->body <= cl;
}

static int
h2_begin_headers_cb(nghttp2_session *ng, const nghttp2_frame *frame,
    void *arg)
{
	struct h2_sess *s = arg;
	struct h2_stream *st;

	if (frame->hd.type != NGHTTP2_HEADERS ||
	    frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	st = h2_stream_new(s, frame->hd.stream_id);
	if (nghttp2_session_set_stream_user_data(ng, st->id, st) != 0) {
		s->nstreams--;
		sb_h2_streams(-1);
		h2_stream_free(st);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	s->hdr = st;
	s->progress++;
	return 0;
}

static int
h2_header_cb(nghttp2_session *ng, const nghttp2_frame *frame,
    const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen,
    uint8_t flags, void *arg)
{
	struct h2_sess *s = arg;
	struct h2_stream *st;

	if (frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	st = h2_stream_get(s, frame->hd.stream_id);
	if (st == NULL)
		return 0;
	/* RFC 7541 4.1's size: small on the wire, huge decoded is a bomb. */
	st->decoded += nlen + vlen + 32;
	if (st->decoded > (uint64_t)H2_HPACK_BOMB * h2.max_header_list) {
		h2_terminate(s, NGHTTP2_ENHANCE_YOUR_CALM,
		    "header block decodes far past max_header_list_size "
		    "(HPACK bomb)");
		return NGHTTP2_ERR_PAUSE;
	}
	if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
		/* Trailers: checked, then dropped as the body is. */
		if (h2_req_trailer(name, nlen, value, vlen) != H2R_OK)
			st->malformed = 1;
		return 0;
	}
	if (h2_req_field(&st->hr, name, nlen, value, vlen) != H2R_OK)
		st->malformed = 1;
	return 0;
}

/*
 * Expect: 100-continue (RFC 9110 10.1.1): the client waits for a 100
 * before its body. It is read and dropped anyway, so say go at once.
 */
static void
h2_continue(struct h2_sess *s, struct h2_stream *st)
{
	const struct http_span *e = &st->hr.req.known[HTTP_H_EXPECT];
	static const nghttp2_nv nv[] = { { (uint8_t *)":status",
	    (uint8_t *)"100", 7, 3, NGHTTP2_NV_FLAG_NONE } };

	if (e->off == 0 || e->len != 12 ||
	    strncasecmp(st->hr.hb + e->off, "100-continue", 12) != 0)
		return;
	(void)nghttp2_submit_headers(s->ng, NGHTTP2_FLAG_NONE, st->id, NULL,
	    nv, 1, NULL);
}

/* The headers of a request are complete. */
static void
h2_headers_done(struct h2_sess *s, struct h2_stream *st, int end_stream)
{
	if (st->malformed || h2_req_finish(&st->hr) != H2R_OK ||
	    (end_stream && !h2_body_fits(st, 1))) {
		h2_stream_malformed(s, st);
		return;
	}
	if (st->hr.status == 0 &&
	    st->hr.req.content_length > h2.conf->max_body_size) {
		st->err = 413;
		h2_stream_queue(s, st);
		return;
	}
	if (end_stream || st->hr.status != 0) {
		h2_stream_queue(s, st);
		return;
	}
	h2_continue(s, st);
}

static int
h2_frame_recv_cb(nghttp2_session *ng, const nghttp2_frame *frame, void *arg)
{
	struct h2_sess *s = arg;
	struct h2_stream *st;
	int end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

	switch (frame->hd.type) {
	case NGHTTP2_HEADERS:
		st = h2_stream_get(s, frame->hd.stream_id);
		if (st == NULL)
			break;
		if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
			h2_headers_done(s, st, end);
		else if (!end || st->malformed || !h2_body_fits(st, 1))
			/* 8.1: trailers end the stream, as regular fields. */
			h2_stream_malformed(s, st);
		else
			h2_stream_queue(s, st);
		break;
	case NGHTTP2_DATA:
		st = nghttp2_session_get_stream_user_data(ng,
		    frame->hd.stream_id);
		if (frame->hd.length == 0 && !end &&
		    h2_cheap(s, "empty DATA frame flood") == -1)
			return NGHTTP2_ERR_PAUSE;
		if (st != NULL && end) {
			if (!h2_body_fits(st, 1))
				h2_stream_malformed(s, st);
			else
				h2_stream_queue(s, st);
		}
		break;
	case NGHTTP2_PING:
		if (h2_cheap(s, "PING flood") == -1)
			return NGHTTP2_ERR_PAUSE;
		break;
	case NGHTTP2_SETTINGS:
		if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) &&
		    h2_cheap(s, "SETTINGS flood") == -1)
			return NGHTTP2_ERR_PAUSE;
		break;
	case NGHTTP2_PRIORITY:
		if (h2_cheap(s, "PRIORITY flood") == -1)
			return NGHTTP2_ERR_PAUSE;
		break;
	case NGHTTP2_RST_STREAM:
		/*
		 * CVE-2023-44487: streams opened and reset at once cost the
		 * client nothing and escape max_concurrent_streams. A browser
		 * cancels a few; more than two windows' worth of streams
		 * beyond the requests answered is an attack.
		 */
		if (h2_cheap(s, "RST_STREAM flood") == -1)
			return NGHTTP2_ERR_PAUSE;
		if (++s->resets > 2 * h2.max_streams + s->requests) {
			h2_terminate(s, NGHTTP2_ENHANCE_YOUR_CALM,
			    "streams opened and reset at once (rapid reset, "
			    "CVE-2023-44487)");
			return NGHTTP2_ERR_PAUSE;
		}
		break;
	}
	return 0;
}

static int
h2_data_chunk_cb(nghttp2_session *ng, uint8_t flags, int32_t id,
    const uint8_t *data, size_t len, void *arg)
{
	struct h2_sess *s = arg;
	struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);

	if (st == NULL)
		return 0;
	/* Read and dropped, under the body limit. */
	st->body += (int64_t)len;
	s->progress++;
	if (!h2_body_fits(st, 0)) {
		h2_stream_malformed(s, st);
		return 0;
	}
	if (st->body > h2.conf->max_body_size && st->err == 0 &&
	    !st->answered) {
		st->err = 413;
		h2_stream_queue(s, st);
	}
	return 0;
}

static int
h2_frame_send_cb(nghttp2_session *ng, const nghttp2_frame *frame, void *arg)
{
	struct h2_sess *s = arg;

	if ((frame->hd.type == NGHTTP2_HEADERS ||
	    frame->hd.type == NGHTTP2_DATA) &&
	    (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
	    !nghttp2_session_get_stream_remote_close(ng, frame->hd.stream_id)) {
		/* Answered before the body was all in (413): RFC 9113 8.1. */
		(void)nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE,
		    frame->hd.stream_id, NGHTTP2_NO_ERROR);
	}
	if (frame->hd.type == NGHTTP2_GOAWAY &&
	    frame->goaway.error_code != NGHTTP2_NO_ERROR && !s->logged) {
		/* nghttp2's own limits (floods, rapid reset) end up here. */
		char addr[NET_ADDRSTRLEN];

		s->logged = 1;
		s->terminated = 1;
		net_addr_format(&s->c->peer.sa, addr, sizeof(addr), 1);
		log_limited(&h2_ll_bad, ev_now(conn_loop()), 0,
		    "HTTP/2 client %s: GOAWAY %s", addr,
		    nghttp2_http2_strerror(frame->goaway.error_code));
	}
	return 0;
}

static int
h2_stream_close_cb(nghttp2_session *ng, int32_t id, uint32_t code, void *arg)
{
	struct h2_sess *s = arg;
	struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);

	if (st == NULL)
		return 0;
	(void)nghttp2_session_set_stream_user_data(ng, id, NULL);
	s->nstreams--;
	sb_h2_streams(-1);
	s->progress++;
	if (st->answered)
		h2_log(s, st);
	st->closed = 1;
	if (!st->queued && !st->on_wire)
		h2_stream_free(st);
	return 0;
}

/* ---- memory: what a session holds, and what an idle one gives back ---------- */

/*
 * nghttp2 allocates through these (nghttp2_mem, user data the session),
 * so a session knows the bytes it holds (h2_session_bytes()), and an
 * idle one can give whole pages back to the kernel (MADV_DONTNEED):
 *
 * - The frame buffer (H2_FRAMEBUF): nghttp2 packs each frame it sends
 *   there, allocates it with the session and keeps it to the end. It
 *   resets the buffer before it packs the next frame, so once it wants
 *   to write nothing, no byte there will be read again: its pages can
 *   go, and the next frame is packed into zero-filled ones. 16 KB of
 *   an idle session's 28 KB in nghttp2 1.52.
 * - A calloc'd page that reads all zero: the kernel maps zeros back on
 *   the next touch, so nghttp2 sees no change. In nghttp2 1.52 the
 *   stream map's table (256 buckets, 4 KB) is all zero again once the
 *   last stream is gone.
 *
 * Both come from page slots of their own (h2_pool_*), not from the
 * heap: page-aligned there, they would leave holes that keep other
 * blocks (the output buffer growing by realloc) from growing in place.
 * Everything else is malloc's. Failures return NULL: nghttp2 answers
 * NGHTTP2_ERR_NOMEM.
 */

/*
 * A mapping of H2_POOL_SLOTS slots of one size, whole pages, for the
 * whole worker. A slot freed (its session closed) goes back to the
 * kernel at once, so an empty pool costs address space, not memory;
 * pools are never unmapped. No mapping to be had: malloc's, kept.
 */
struct h2_pool {
	struct h2_pool	*next;
	char		*base;
	uint64_t	 free;		/* bit i: slot i is free */
};

static size_t
h2_pool_slot(int cls)
{
	return cls == H2_POOL_PAGE ? h2.page :
	    (H2_FRAMEBUF + h2.page - 1) & ~(h2.page - 1);
}

/* A slot of class cls, its pages zero or as its last user left them. */
static void *
h2_pool_get(int cls)
{
	struct h2_pool *pl;
	size_t size = h2_pool_slot(cls);
	void *base;
	int i;

	for (pl = h2.pools[cls]; pl != NULL && pl->free == 0; pl = pl->next)
		;
	if (pl == NULL) {
		base = mmap(NULL, size * H2_POOL_SLOTS, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (base == MAP_FAILED)
			return NULL;
		if ((pl = malloc(sizeof(*pl))) == NULL) {
			(void)munmap(base, size * H2_POOL_SLOTS);
			return NULL;
		}
		pl->base = base;
		pl->free = ~(uint64_t)0;
		pl->next = h2.pools[cls];
		h2.pools[cls] = pl;
	}
	i = __builtin_ctzll(pl->free);
	pl->free &= ~((uint64_t)1 << i);
	return pl->base + (size_t)i * size;
}

static void
h2_pool_put(int cls, void *p)
{
	struct h2_pool *pl;
	size_t size = h2_pool_slot(cls);
	size_t i;

	for (pl = h2.pools[cls]; pl != NULL; pl = pl->next) {
		if ((char *)p >= pl->base &&
		    (char *)p < pl->base + size * H2_POOL_SLOTS) {
			i = (size_t)((char *)p - pl->base) / size;
			(void)madvise(p, size, MADV_DONTNEED);
			pl->free |= (uint64_t)1 << i;
			return;
		}
	}
}

/* The session's slot for p, or -1: p is malloc's. */
static int
h2_pg_find(const struct h2_sess *s, const void *p)
{
	int i;

	for (i = 0; i < H2_PAGE_BLOCKS; i++)
		if (s->pg[i].p == p)
			return i;
	return -1;
}

/* A pool slot for the session; NULL: none free (use malloc instead). */
static void *
h2_pg_get(struct h2_sess *s, int cls, int dead_idle)
{
	int i;
	void *p;

	if ((i = h2_pg_find(s, NULL)) == -1 || (p = h2_pool_get(cls)) == NULL)
		return NULL;
	s->pg[i].p = p;
	s->pg[i].cls = (uint8_t)cls;
	s->pg[i].dead_idle = (uint8_t)dead_idle;
	s->mem += h2_pool_slot(cls);
	return p;
}

static void
h2_pg_put(struct h2_sess *s, int i)
{
	h2_pool_put(s->pg[i].cls, s->pg[i].p);
	s->mem -= h2_pool_slot(s->pg[i].cls);
	s->pg[i].p = NULL;
}

/*
 * Small blocks nghttp2 frees wait in a LIFO per size (for the whole
 * worker) for its next allocation of that size: a batch of streams
 * closing at once frees more blocks of one size (a stream, its
 * outbound items) than glibc's per-thread cache keeps (7), and the rest
 * would cost a trip through malloc's bins (2% more instructions per
 * request with 10 streams a connection, callgrind). At most 17 sizes x
 * H2_BIN_DEPTH x 256 bytes, 136 KB, for the whole worker; free() would
 * keep them in the heap as well.
 */
#define H2_BIN_MAX	256	/* usable bytes; bigger ones go to free() */
#define H2_BIN_DEPTH	32	/* blocks kept per size */

struct h2_binned {
	struct h2_binned *next;
	size_t		 usable;
};

static struct {
	struct h2_binned *head;
	uint32_t	 n;
} h2_bins[H2_BIN_MAX / 16 + 1];

/* A kept block of at least len bytes; its usable size in *u. NULL: none. */
static void *
h2_bin_get(size_t len, size_t *u)
{
	struct h2_binned *b;
	size_t k;

	if (len > H2_BIN_MAX - 8)
		return NULL;
	/* The usable size glibc gives len bytes: 16-byte chunks, 8 of header. */
	k = (len < 24 ? 24 : ((len + 23) & ~(size_t)15) - 8) >> 4;
	if ((b = h2_bins[k].head) == NULL || b->usable < len)
		return NULL;
	h2_bins[k].head = b->next;
	h2_bins[k].n--;
	*u = b->usable;
	return b;
}

static int
h2_bin_put(void *p, size_t u)
{
	struct h2_binned *b = p;
	size_t k = u >> 4;

	if (u > H2_BIN_MAX || u < sizeof(*b) || h2_bins[k].n >= H2_BIN_DEPTH)
		return -1;
	b->usable = u;
	b->next = h2_bins[k].head;
	h2_bins[k].head = b;
	h2_bins[k].n++;
	return 0;
}

static void *
h2_mem_malloc(size_t len, void *arg)
{
	struct h2_sess *s = arg;
	size_t u;
	void *p;

	if (s->creating && len == H2_FRAMEBUF &&
	    (p = h2_pg_get(s, H2_POOL_FRAMEBUF, 1)) != NULL)
		return p;
	if ((p = h2_bin_get(len, &u)) != NULL) {
		s->mem += u;
		return p;
	}
	if ((p = malloc(len)) != NULL)
		s->mem += malloc_usable_size(p);
	return p;
}

static void
h2_mem_free(void *p, void *arg)
{
	struct h2_sess *s = arg;
	size_t n;
	int i;

	if (p == NULL)
		return;
	if ((i = h2_pg_find(s, p)) != -1) {
		h2_pg_put(s, i);
		return;
	}
	n = malloc_usable_size(p);
	s->mem -= n;
	if (h2_bin_put(p, n) == -1)
		free(p);
}

static void *
h2_mem_calloc(size_t nmemb, size_t len, void *arg)
{
	struct h2_sess *s = arg;
	void *p;

	if (len != 0 && nmemb > SIZE_MAX / len)
		return NULL;
	if (nmemb * len == h2.page &&
	    (p = h2_pg_get(s, H2_POOL_PAGE, 0)) != NULL) {
		memset(p, 0, h2.page);	/* a slot's last user left its bytes */
		return p;
	}
	if ((p = calloc(nmemb, len)) != NULL)
		s->mem += malloc_usable_size(p);
	return p;
}

static void *
h2_mem_realloc(void *p, size_t len, void *arg)
{
	struct h2_sess *s = arg;
	size_t old;
	void *q;
	int i;

	if (p == NULL)	/* how nghttp2_buf_reserve() makes the frame buffer */
		return h2_mem_malloc(len, arg);
	if ((i = h2_pg_find(s, p)) != -1) {
		/* Not done by nghttp2 1.52; a pool slot moves to malloc. */
		if ((q = malloc(len)) == NULL)
			return NULL;
		s->mem += malloc_usable_size(q);
		old = h2_pool_slot(s->pg[i].cls);
		memcpy(q, p, len < old ? len : old);
		h2_pg_put(s, i);
		return q;
	}
	old = malloc_usable_size(p);
	if ((q = realloc(p, len)) == NULL)
		return NULL;
	s->mem += malloc_usable_size(q) - old;
	return q;
}

/* Is [p, p + len) all zero? len a multiple of a word. */
static int
h2_zero(const char *p, size_t len)
{
	const unsigned long *w = (const unsigned long *)(const void *)p;
	size_t i;

	for (i = 0; i < len / sizeof(*w); i++)
		if (w[i] != 0)
			return 0;
	return 1;
}

/* Give back the pages an idle session does not need (see above). */
static void
h2_mem_release(struct h2_sess *s)
{
	size_t size;
	int i;

	s->released = 0;
	for (i = 0; i < H2_PAGE_BLOCKS; i++) {
		if (s->pg[i].p == NULL)
			continue;
		size = h2_pool_slot(s->pg[i].cls);
		if (!s->pg[i].dead_idle && !h2_zero(s->pg[i].p, size))
			continue;
		if (madvise(s->pg[i].p, size, MADV_DONTNEED) == 0)
			s->released += size;
	}
}

static void	 h2_rel_timer(struct ev_loop *loop, void *arg);

static void
h2_rel_unlink(struct h2_sess *s)
{
	if (!s->rel_queued)
		return;
	s->rel_queued = 0;
	if (s->rel_prev != NULL)
		s->rel_prev->rel_next = s->rel_next;
	else
		h2.rel_head = s->rel_next;
	if (s->rel_next != NULL)
		s->rel_next->rel_prev = s->rel_prev;
	else
		h2.rel_tail = s->rel_prev;
	s->rel_prev = s->rel_next = NULL;
}

static void
h2_rel_arm(uint64_t now)
{
	uint64_t due;

	if (h2.rel_armed || h2.rel_head == NULL)
		return;
	due = h2.rel_head->idle_since + H2_RELEASE_MS;
	h2.rel_armed = 1;
	(void)ev_timer_add(conn_loop(), due > now ? due - now : 0, h2_rel_timer,
	    NULL);
}

/*
 * The session has no stream: queue it to give pages back after
 * H2_RELEASE_MS. Called after each batch of its events; queued once.
 */
static void
h2_mem_idle(struct h2_sess *s)
{
	uint64_t now = ev_now(conn_loop());

	if (s->rel_queued)
		return;
	s->released = 0;	/* whatever this batch touched is back */
	s->rel_queued = 1;
	s->idle_since = now;
	s->rel_next = NULL;
	s->rel_prev = h2.rel_tail;
	if (h2.rel_tail != NULL)
		h2.rel_tail->rel_next = s;
	else
		h2.rel_head = s;
	h2.rel_tail = s;
	h2_rel_arm(now);
}

/* The session has streams again: its pages are in use. */
static void
h2_mem_busy(struct h2_sess *s)
{
	h2_rel_unlink(s);
	s->released = 0;
}

void
h2_release_idle(uint64_t now)
{
	struct h2_sess *s;

	while ((s = h2.rel_head) != NULL && s->idle_since + H2_RELEASE_MS <= now) {
		h2_rel_unlink(s);
		/* Still nothing to send: the frame buffer holds no frame. */
		if (s->nstreams == 0 && !nghttp2_session_want_write(s->ng))
			h2_mem_release(s);
	}
	h2_rel_arm(now);
}

static void
h2_rel_timer(struct ev_loop *loop, void *arg)
{
	(void)arg;
	h2.rel_armed = 0;
	h2_release_idle(ev_now(loop));
}

size_t
h2_session_bytes(const struct conn *c)
{
	const struct h2_sess *s;

	if (c->proto != &h2_proto || c->state == H2_SNIFF || c->h2 == NULL)
		return 0;
	s = c->h2;
	return sizeof(*s) + s->mem - s->released + (s->ob != NULL ? s->ob_cap : 0);
}

/* ---- the session --------------------------------------------------------------- */

void
h2_init(const struct conf *conf)
{
	nghttp2_session_callbacks *cb;

	h2.conf = conf;
	h2.max_streams = (uint32_t)conf->http2.max_concurrent_streams;
	h2.max_header_list = (uint32_t)conf->http2.max_header_list_size;
	if (h2.cbs != NULL)
		return;
	if (nghttp2_session_callbacks_new(&cb) != 0 ||
	    nghttp2_option_new(&h2.opt) != 0)
		fatalx(EXIT_TEMP, "nghttp2: out of memory");
	nghttp2_session_callbacks_set_send_callback(cb, h2_send_cb);
	nghttp2_session_callbacks_set_send_data_callback(cb, h2_send_data_cb);
	nghttp2_session_callbacks_set_data_source_read_length_callback(cb,
	    h2_read_length_cb);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb,
	    h2_begin_headers_cb);
	nghttp2_session_callbacks_set_on_header_callback(cb, h2_header_cb);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb,
	    h2_frame_recv_cb);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb,
	    h2_data_chunk_cb);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb,
	    h2_frame_send_cb);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb,
	    h2_stream_close_cb);
	h2.cbs = cb;
	h2.page = (size_t)sysconf(_SC_PAGESIZE);
	/* Streams beyond SETTINGS_MAX_CONCURRENT_STREAMS are refused. */
	nghttp2_option_set_max_settings(h2.opt, 32);
	/*
	 * CONTINUATION frames per header block (CVE-2024-28182): nghttp2's
	 * default, said here so that the package depends on a libnghttp2
	 * that has the cap (configure checks for it too).
	 */
	nghttp2_option_set_max_continuations(h2.opt, 8);
	/*
	 * A closed stream is freed at once. nghttp2 would otherwise keep up
	 * to max_concurrent_streams of them (232 bytes each in 1.52: 30 KB
	 * on an idle connection after a burst of 128) only so that a new
	 * stream may name one as its parent in RFC 7540's priority tree,
	 * which RFC 9113 deprecates and nghttp2 1.65 dropped altogether.
	 * Such a stream gets the default priority instead (RFC 9113 5.3.2).
	 */
	nghttp2_option_set_no_closed_streams(h2.opt, 1);
	/*
	 * HPACK's dynamic table for the fields we send: 1 KB holds the
	 * fields that repeat (server, content-type, cache-control, date),
	 * as many as fit in a response's head. nghttp2's default, 4 KB,
	 * fills over a connection's life with dates and last-modified
	 * values (each 200-odd bytes of entry, name and value copies in
	 * memory), 12 KB an idle connection keeps for nothing. The table
	 * we decode (the client's, SETTINGS_HEADER_TABLE_SIZE) stays at
	 * 4 KB: it spares us decoding the same request fields again.
	 */
	nghttp2_option_set_max_deflate_dynamic_table_size(h2.opt, 1024);
	/*
	 * RFC 9113 8.1-8.3's rules for a request are porter's own
	 * (h2_req.c, the Content-Length and trailer checks here), as
	 * HTTP/1.1's are: nghttp2 checking every field again cost a tenth
	 * of a small request's instructions.
	 */
	nghttp2_option_set_no_http_messaging(h2.opt, 1);
}

static int
h2_session_start(struct conn *c)
{
	struct h2_sess *s = xcalloc(1, sizeof(*s));
	nghttp2_settings_entry iv[3] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, h2.max_streams },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, h2.max_header_list },
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
	};
	/* nghttp2 keeps a copy; s is the allocator's user data. */
	nghttp2_mem mem = { s, h2_mem_malloc, h2_mem_free, h2_mem_calloc,
	    h2_mem_realloc };
	int rv;

	s->creating = 1;
	rv = nghttp2_session_server_new3(&s->ng, h2.cbs, s, h2.opt, &mem);
	s->creating = 0;
	if (rv != 0) {
		free(s);
		conn_close(c);
		return -1;
	}
	s->c = c;
	s->cheap_since = ev_now(conn_loop());
	c->h2 = s;
	c->state = H2_RUN;
	sb_h2_conn(1);
	(void)nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, 3);
	return 0;
}

/* Feed bytes to nghttp2; -1 if the session is over (GOAWAY queued). */
static int
h2_feed(struct h2_sess *s, const uint8_t *p, size_t len)
{
	ssize_t rv;

	if (s->terminated)
		return -1;	/* after GOAWAY: read and dropped */
	rv = nghttp2_session_mem_recv(s->ng, p, len);
	if (rv >= 0)
		return 0;
	switch (rv) {
	case NGHTTP2_ERR_BAD_CLIENT_MAGIC:
		h2_terminate(s, NGHTTP2_PROTOCOL_ERROR, NULL);
		break;
	case NGHTTP2_ERR_FLOODED:
		h2_terminate(s, NGHTTP2_ENHANCE_YOUR_CALM,
		    "SETTINGS or PING acknowledgements piling up (flood)");
		break;
	default:
		/* Debian's nghttp2 caps CONTINUATION frames (CVE-2024-27983). */
		if (rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS) {
			h2_terminate(s, NGHTTP2_ENHANCE_YOUR_CALM,
			    "CONTINUATION flood");
			break;
		}
		h2_terminate(s, NGHTTP2_PROTOCOL_ERROR, nghttp2_strerror((int)rv));
		break;
	}
	return -1;
}

/* Read what the socket holds and feed it; -1: c closed. */
static int
h2_read(struct h2_sess *s)
{
	struct conn *c = s->c;
	uint8_t buf[H2_READ_BUF];
	ssize_t n;
	int drained;

	while (c->readable) {
		drained = 0;
		n = c->xp->read(&c->xio, buf, sizeof(buf), &drained);
		if (drained)
			c->readable = 0;
		if (n == IO_AGAIN)
			break;
		if (n < 0) {
			conn_close(c);
			return -1;
		}
		(void)h2_feed(s, buf, (size_t)n);
	}
	return 0;
}

/* The stream timer: idle_timeout with no stream, send_timeout without progress. */
static void
h2_timer(struct h2_sess *s)
{
	struct conn *c = s->c;

	if (c->closed)
		return;
	if (s->nstreams == 0) {
		if (c->tclass != CONN_T_H2_IDLE)
			conn_timer(c, CONN_T_H2_IDLE);
		h2_mem_idle(s);
		return;
	}
	h2_mem_busy(s);
	if (c->tclass != CONN_T_SEND || s->progress != s->progress_seen) {
		s->progress_seen = s->progress;
		conn_timer(c, CONN_T_SEND);
	}
}

/*
 * Graceful: GOAWAY NO_ERROR with the last stream we took (RFC 9113
 * 6.8); open streams finish, nghttp2 refuses newer ones, and once none
 * is left h2_out() closes.
 */
static void
h2_goaway_drain(struct h2_sess *s)
{
	if (s->terminated || s->draining)
		return;
	s->draining = 1;
	(void)nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE,
	    nghttp2_session_get_last_proc_stream_id(s->ng), NGHTTP2_NO_ERROR,
	    NULL, 0);
}

static void
h2_run(struct conn *c)
{
	struct h2_sess *s = c->h2;

	if (h2_read(s) == -1)
		return;
	if (conn_draining())
		h2_goaway_drain(s);
	if (h2_out(s) == -1)
		return;
	if (!c->registered && conn_watch(c, 0) == -1)
		return;
	h2_timer(s);
}

/* ---- prior knowledge: HTTP/2 or HTTP/1.1? ------------------------------------- */

/*
 * Read the first bytes: the client preface means HTTP/2; anything else
 * goes to h1.c with the bytes read so far.
 */
static void
h2_sniff(struct conn *c)
{
	ssize_t n;
	int drained = 0;
	size_t cmp;

	if (c->in == NULL)
		conn_buf_attach(c);
	while (c->in_len < H2_PREFACE_LEN && c->readable) {
		n = c->xp->read(&c->xio, c->in + c->in_len,
		    c->in_cap - c->in_len, &drained);
		if (drained)
			c->readable = 0;
		if (n == IO_AGAIN)
			break;
		if (n < 0) {
			conn_close(c);
			return;
		}
		c->in_len += (uint32_t)n;
	}
	cmp = c->in_len < H2_PREFACE_LEN ? c->in_len : H2_PREFACE_LEN;
	if (memcmp(c->in, H2_PREFACE, cmp) != 0) {
		c->proto = &h1_proto;
		c->proto->start(c);
		return;
	}
	if (c->in_len < H2_PREFACE_LEN) {
		(void)conn_watch(c, 0);
		return;
	}
	if (h2_session_start(c) == -1)
		return;
	/* nghttp2 checks the preface again and keeps what it needs. */
	(void)h2_feed(c->h2, (const uint8_t *)c->in, c->in_len);
	conn_buf_release(c);
	h2_run(c);
}

/* ---- the protocol's face to the core ------------------------------------------ */

static void
h2_start(struct conn *c)
{
	const unsigned char *name;
	unsigned len;

	c->state = H2_SNIFF;
	c->h2 = NULL;	/* the union may hold the PROXY stage's pointer */
	conn_timer(c, CONN_T_HEADER);
	if (c->xp != &xprt_tls) {
		h2_sniff(c);	/* the kernel socket (or a test's transport) */
		return;
	}
	/* TLS: ALPN said (RFC 9113 3.2); no ALPN or "http/1.1" is HTTP/1.1. */
	if (xprt_tls_alpn(&c->xio, &name, &len) && len == 2 &&
	    memcmp(name, "h2", 2) == 0) {
		if (h2_session_start(c) == -1)
			return;
		h2_run(c);
		return;
	}
	c->proto = &h1_proto;
	c->proto->start(c);
}

static void
h2_event(struct conn *c, uint32_t events)
{
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->readable = 1;
	if (c->state == H2_SNIFF) {
		h2_sniff(c);
		return;
	}
	if (c->state == H2_LINGER) {
		conn_discard(c);
		return;
	}
	if (events & EPOLLERR) {
		conn_close(c);
		return;
	}
	h2_run(c);
}

static void
h2_answer(struct conn *c)
{
	struct h2_sess *s = c->h2;
	struct h2_stream *st;

	if (s == NULL || c->state != H2_RUN)
		return;
	fcache_sync();
	while ((st = s->qhead) != NULL) {
		s->qhead = st->qnext;
		if (s->qhead == NULL)
			s->qtail = NULL;
		st->queued = 0;
		if (st->closed) {
			/* Reset before its turn (rapid reset): no work done. */
			if (!st->on_wire)
				h2_stream_free(st);
			continue;
		}
		if (st->reset)
			continue;	/* freed once its RST_STREAM closes it */
		h2_answer_stream(s, st);
	}
	if (h2_out(s) == -1)
		return;
	h2_timer(s);
}

static void
h2_timeout(struct conn *c)
{
	struct h2_sess *s = c->h2;

	if (s != NULL && c->state == H2_RUN) {
		/* No stream: idle. Streams without progress: a stalled client. */
		if (s->nstreams == 0)
			h2_terminate(s, NGHTTP2_NO_ERROR, NULL);
		else
			h2_terminate(s, NGHTTP2_ENHANCE_YOUR_CALM,
			    "no progress within send_timeout");
		c->readable = 0;
		if (h2_out(s) == -1)
			return;
	}
	conn_close(c);
}

static int
h2_idle(const struct conn *c)
{
	const struct h2_sess *s = c->h2;

	if (c->state == H2_SNIFF)
		return c->in == NULL || c->in_len == 0;
	if (c->state == H2_LINGER)
		return 1;
	return s->nstreams == 0 && (s->ob == NULL || s->ob_len == s->ob_off) &&
	    s->tail == NULL;
}

static void
h2_close(struct conn *c)
{
	struct h2_sess *s = c->h2;
	struct h2_stream *st;

	if (s == NULL)
		return;
	c->h2 = NULL;
	/* Each open stream is closed (and logged if answered) by nghttp2. */
	if (s->tail != NULL) {
		s->tail->on_wire = 0;
		s->tail = NULL;
	}
	/* nghttp2_session_del() calls no callback: the streams are ours to free. */
	sb_h2_streams(-(int)s->nstreams);
	sb_h2_conn(-1);
	h2_rel_unlink(s);
	nghttp2_session_del(s->ng);
	while ((st = s->all) != NULL)
		h2_stream_free(st);
	free(s->ob);
	free(s);
}

static void
h2_drain(struct conn *c)
{
	if (c->state != H2_RUN || c->h2 == NULL)
		return;
	h2_goaway_drain(c->h2);
	(void)h2_out(c->h2);
}

const struct proto h2_proto = {
	.name = "h2c",
	.start = h2_start,
	.event = h2_event,
	.answer = h2_answer,
	.timeout = h2_timeout,
	.idle = h2_idle,
	.close = h2_close,
	.drain = h2_drain,
};
