/*
 * h2_int.h - what the files behind h2_proto share, and nobody else
 * (but the unit tests): a session, a stream, the worker's HTTP/2 state
 * and the functions each file lends the others. The core uses
 * porter.h's h2_* only.
 *
 *   h2.c         the protocol's entry points (start, events, answers,
 *                timeouts, drain, GOAWAY), the session, and nghttp2's
 *                callbacks for what the client sent
 *   h2_out.c     the output side: the output buffer, DATA frames and
 *                their data source, writes through the transport; a
 *                stream's response and its HEADERS
 *   h2_stream.c  a stream's record: made, logged, freed, and kept as
 *                a spare
 *   h2_mem.c     nghttp2's allocator: what a session holds, and what an
 *                idle one gives back
 *
 * The calls run one way: h2.c -> h2_out.c -> h2_stream.c -> h2_mem.c
 * (h2.c calls each of the others; h2_mem.c none of them).
 */
#ifndef PORTER_H2_INT_H
#define PORTER_H2_INT_H

#include <stdint.h>
#include <sys/types.h>

#include <nghttp2/nghttp2.h>

#include "h2.h"

/* Pool slots a session holds: the frame buffer and the stream map's table. */
#define H2_PAGE_BLOCKS	2
/* Pool slot sizes: one page (the stream map), the frame buffer's pages. */
enum { H2_POOL_PAGE, H2_POOL_FRAMEBUF, H2_POOL_CLASSES };

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

struct h2_state {
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
};

/* The worker's HTTP/2 state: h2_init()'s settings, h2_mem.c's pools. */
extern struct h2_state h2;

/* ---- h2_out.c: the output side, a stream's response ----------------------- */

/* nghttp2's send_callback: a frame's bytes into the output buffer. */
ssize_t	 h2_send_cb(nghttp2_session *ng, const uint8_t *data, size_t len,
	    int flags, void *arg);
/*
 * nghttp2's send_data_callback: a no-copy DATA frame's header into the
 * output buffer, its payload read in behind it or left to be sent from
 * the file.
 */
int	 h2_send_data_cb(nghttp2_session *ng, nghttp2_frame *frame,
	    const uint8_t *framehd, size_t length, nghttp2_data_source *source,
	    void *arg);
/*
 * nghttp2's data_source_read_length_callback: how long a DATA payload
 * may be (over TLS, to the end of the current TLS record).
 */
ssize_t	 h2_read_length_cb(nghttp2_session *ng, uint8_t type, int32_t id,
	    int32_t conn_window, int32_t stream_window, uint32_t max_frame,
	    void *arg);
/*
 * Write what is gathered, asking nghttp2 for more until it has nothing
 * or the socket is full; once all is said and nothing more is to be
 * heard, half-close and linger. 0: done or waiting for EPOLLOUT; -1: c
 * closed or lingering.
 */
int	 h2_out(struct h2_sess *s);
/*
 * Answer a queued stream: its response built (http_handle(), or an
 * error page) and submitted to nghttp2 as HEADERS and DATA.
 */
void	 h2_answer_stream(struct h2_sess *s, struct h2_stream *st);

/* ---- h2_stream.c: a stream's record ---------------------------------------- */

/*
 * A new stream id of s (a spare if one is kept), first in s->all and
 * counted in s->nstreams. Never NULL (xmalloc).
 */
struct h2_stream *h2_stream_new(struct h2_sess *s, int32_t id);
/*
 * Unlink st from its session and release its response; st is kept as
 * a spare or freed. s->nstreams is the caller's to count down.
 */
void	 h2_stream_free(struct h2_stream *st);
/*
 * Queue st to be answered (once; not after its answer), and c with it.
 * Here, inline: h2.c's callbacks call it for every request.
 */
static inline void
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
/* The access log's line for a stream that was answered, and its counts. */
void	 h2_log(struct h2_sess *s, struct h2_stream *st);

/* ---- h2_mem.c: what a session holds ---------------------------------------- */

/*
 * nghttp2_mem's functions, the session (struct h2_sess) their user
 * data: they count in s->mem what nghttp2 holds, and take the frame
 * buffer and page-sized tables from pools. NULL: no memory.
 */
void	*h2_mem_malloc(size_t len, void *arg);
void	 h2_mem_free(void *p, void *arg);
void	*h2_mem_calloc(size_t nmemb, size_t len, void *arg);
void	*h2_mem_realloc(void *p, size_t len, void *arg);
/* The session has no stream: its pages go back after a while. */
void	 h2_mem_idle(struct h2_sess *s);
/* The session has streams again: its pages are in use. */
void	 h2_mem_busy(struct h2_sess *s);
/* The session leaves the queue of idle ones (it closes). */
void	 h2_rel_unlink(struct h2_sess *s);

#endif /* PORTER_H2_INT_H */
