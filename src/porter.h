/*
 * porter.h - the project header: shared structs, limits and every
 * file's prototypes, grouped under the file that defines them.
 * ev.h, net.h, http_parse.h and scoreboard.h stand alone and are
 * included here; shm.h is included where regions are made.
 */
#ifndef PORTER_H
#define PORTER_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <sys/types.h>
#include <time.h>
#include <sys/stat.h>
#include <netinet/in.h>

#include "ev.h"
#include "net.h"
#include "http_parse.h"
#include "scoreboard.h"
#include "xprt.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#ifndef RUNSTATEDIR
#define RUNSTATEDIR "/run"
#endif
#define PORTER_CONF_DEFAULT	SYSCONFDIR "/porter/porter.conf"
#define PORTER_PID_DEFAULT	RUNSTATEDIR "/porter/porter.pid"

/* Exit codes, s6 style: systemd's RestartPreventExitStatus= can use them. */
#define EXIT_CONFIG	78	/* EX_CONFIG: permanent, do not restart */
#define EXIT_TEMP	75	/* EX_TEMPFAIL: worth a retry */

#define PORTER_MAX_WORKERS	256

/* ---- configuration (conf.c) ---------------------------------------------- */

struct conf_cache_rule {
	char		*match;		/* "/assets/" (path prefix) or ".css" (extension) */
	int		 is_ext;	/* match starts with '.' */
	long		 max_age;	/* seconds; -1: no Cache-Control */
	int		 immutable;
	int		 no_cache;
};

struct conf_error_page {
	int		 status;	/* 400..599 */
	char		*path;		/* URL path inside the site's root */
};

struct conf_site {
	char		**names;	/* lower-case; "*" is the default site */
	size_t		 nnames;
	char		*root;
	char		**index;
	size_t		 nindex;
	int		 listing;
	struct conf_cache_rule *cache;
	size_t		 ncache;
	struct conf_error_page *error_pages;
	size_t		 nerror_pages;
	char		*acme_challenge_root;	/* NULL: the challenge path comes from root */
	int		 redirect_https;	/* plain-HTTP requests -> https:// */
	char		*hsts;		/* "Strict-Transport-Security: ...\r\n"
					 * for responses over TLS; NULL: none */
	size_t		 hsts_len;
	/* tls: { certificate; key; } (conf_tls.c), inherited from the top */
	char		*tls_certificate;	/* PEM chain; NULL: none */
	char		*tls_key;		/* PEM key */
	char		*tls_origin;	/* "file:line" of the certificate setting */
};

/* What a listener speaks (listen entry key "protocol"). */
enum { PROTO_HTTP, PROTO_ECHO };

/*
 * One entry of 'listen': a plain string is { address = "..."; }. The
 * TLS, PROXY-protocol and status features add their keys here.
 */
struct limit_cidr;

struct conf_listen {
	const char	*address;	/* as written; conf->listen[i] owns it */
	int		 protocol;	/* PROTO_* */
	int		 http2;		/* -1: the default (off on plain listeners) */
	/*
	 * proxy_protocol = true: every connection starts with a PROXY v1
	 * or v2 header (conn_proxy.c), accepted only from trusted peers
	 * (never empty then; this entry owns the array).
	 */
	int		 proxy_protocol;
	struct limit_cidr *trusted;
	size_t		 ntrusted;
	int		 tls;		/* key "tls": speak TLS (conf_tls.c) */
};

/*
 * The top-level 'tls' group (conf_tls.c; src/tls.h says what each
 * setting does). Certificates are per site (struct conf_site).
 */
struct conf_tls {
	int		 profile;	/* TLS_PROFILE_* (tls.h) */
	unsigned	 protocols;	/* TLS_PROTO_* (tls.h); 0: the profile's */
	char		*ciphers;	/* TLS 1.2 list; NULL: the profile's */
	char		*ciphersuites;	/* TLS 1.3 list; NULL: the profile's */
	char		*groups;	/* NULL: the profile's */
	int		 ktls;		/* "auto": 1, "off": 0 */
	int		 session_tickets;	/* stateless resumption (RFC 8446 4.6.1) */
	int		 ticket_lifetime;	/* seconds */
};

/*
 * The status listener (conf_status.c reads it; status.c serves it):
 * /metrics, /status and /health on addresses of its own, for the
 * peers in allow only.
 */
struct conf_status {
	char		**listen;	/* addresses as written; none: off */
	size_t		 nlisten;
	char		**allow;	/* CIDRs or addresses of TCP peers */
	size_t		 nallow;
	int		 access_log;	/* scrapes go to the access log too */
};

/* Health and drain (status.c answers /health; master.c drains). */
struct conf_health {
	int		 drain_status;	/* /health while draining: 503 or 404 */
	int		 shutdown_delay; /* s of draining before a TERM stops */
};

struct conf {
	char		*path;		/* the file this came from */

	char		**listen;	/* addresses as written: "*:80", "[::1]:8000" */
	struct conf_listen *listeners;	/* nlisten, in the same order */
	size_t		 nlisten;
	int		 workers;	/* resolved: 1..PORTER_MAX_WORKERS */
	char		*user;		/* NULL: keep the starting user */
	char		*group;		/* NULL: the user's primary group */
	char		*pid_file;	/* NULL: none */

	char		*error_log;	/* "stderr" or a path */
	char		*access_log;	/* a path; NULL when "off" */

	/* limits: timeouts in seconds, sizes in bytes */
	int		 keepalive_timeout;
	int		 keepalive_requests;
	int		 header_timeout;
	int		 body_timeout;
	int		 send_timeout;
	int		 max_header_size;
	int64_t		 max_body_size;
	int		 max_connections;	/* per worker */
	int		 echo_idle_timeout;	/* echo listeners: no byte either way */
	int		 proxy_timeout;		/* PROXY header must be in by then */
	int		 min_body_rate;		/* bytes/s after body_timeout, 0: off */
	int		 min_send_rate;		/* bytes/s after send_timeout, 0: off */
	int		 handshake_timeout;	/* TLS handshake, seconds */

	/* supervision */
	int		 shutdown_timeout;
	int		 worker_timeout;	/* 0: no hang detection */
	long		 max_requests;		/* per worker, 0: unlimited */
	int		 core_dumps;		/* workers stay dumpable (ptrace-able) */

	/* HTTP/2 (h2.c): per connection */
	struct {
		int	 max_concurrent_streams;
		int	 max_header_list_size;	/* bytes, HPACK-decoded */
		int	 idle_timeout;		/* seconds with no open stream */
	} http2;

	struct {
		int	 enabled;
		char	**types;	/* MIME types; "text/" + "*" patterns allowed */
		size_t	 ntypes;
		long	 min_size;
		int	 level;		/* 1..9 */
	} compression;

	int		 https_port;	/* the first TLS listener's; 0: none */
	struct conf_tls	 tls;

	struct conf_site *sites;	/* at least one */
	size_t		 nsites;
	size_t		 default_site;	/* index into sites */

	struct conf_status status;
	struct conf_health health;
	struct conf_limits *limits;	/* client_limits (climit.h); NULL: off */
};

/*
 * Load and validate a configuration file. On error returns NULL and
 * writes "file:line: message" (or "file: message") into err.
 */
struct conf	*conf_load(const char *path, char *err, size_t errlen);
void		 conf_free(struct conf *conf);
/* "http", "echo": a PROTO_* as the configuration spells it. */
const char	*conf_protocol_name(int protocol);


/* ---- log.c ------------------------------------------------------------- */

enum { LOG_LVL_CRIT, LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_NOTICE,
    LOG_LVL_INFO, LOG_LVL_DEBUG };

#define PRINTF(f, a)	__attribute__((format(printf, f, a)))

void	 log_init(int debug);
int	 log_stderr_is_journal(void);
int	 log_open(const char *path, char *err, size_t errlen);
int	 log_reopen(char *err, size_t errlen);
int	 log_get_fd(void);
void	 log_set_fd(int fd);
void	 log_vwrite(int level, const char *errstr, const char *fmt, va_list ap)
	    PRINTF(3, 0);
void	 log_crit(const char *, ...) PRINTF(1, 2);
void	 log_critx(const char *, ...) PRINTF(1, 2);
void	 log_err(const char *, ...) PRINTF(1, 2);
void	 log_errx(const char *, ...) PRINTF(1, 2);
void	 log_warn(const char *, ...) PRINTF(1, 2);
void	 log_warnx(const char *, ...) PRINTF(1, 2);
void	 log_notice(const char *, ...) PRINTF(1, 2);
void	 log_info(const char *, ...) PRINTF(1, 2);
void	 log_debug(const char *, ...) PRINTF(1, 2);
void	 fatal(int code, const char *, ...) PRINTF(2, 3) __attribute__((noreturn));

/*
 * Rate-limited logging for failures that can repeat for every request or
 * loop turn. Each call site owns one static struct log_limit:
 *
 *	static struct log_limit ll = LOG_LIMIT_INIT(LOG_LVL_WARN, "access log write");
 *	log_limited(&ll, ev_now(loop), errno, "access log write");
 *
 * log_limited() writes the line (fmt, then ": strerror(errnum)" unless
 * errnum is 0) at ll's level if no line of ll was written in the last
 * LOG_LIMIT_MS milliseconds of now_ms (a monotonic clock, e.g. ev_now()),
 * else only counts it. The count goes at the end of the next line of ll
 * as "(N similar messages suppressed)", or, if no failure comes to carry
 * it, log_limit_flush() writes "<what>: N similar messages suppressed"
 * once the second is over: workers call it every tick, and with
 * UINT64_MAX on their way out. Both keep errno; ll stays the caller's
 * (static storage: log.c keeps a pointer to it while a count is pending).
 */
#define LOG_LIMIT_MS	1000

struct log_limit {
	int		 ll_level;	/* LOG_LVL_* */
	const char	*ll_what;	/* names the failure in the count line */
	int		 ll_started;	/* a line was written */
	int		 ll_pending;	/* in log.c's list of counts to report */
	uint64_t	 ll_until;	/* ms: before this, count instead of write */
	uint64_t	 ll_suppressed;
	struct log_limit *ll_next;
};
#define LOG_LIMIT_INIT(level, what)	{ (level), (what), 0, 0, 0, 0, NULL }

void	 log_limited(struct log_limit *ll, uint64_t now_ms, int errnum,
	    const char *fmt, ...) PRINTF(4, 5);
void	 log_limit_flush(uint64_t now_ms);
void	 fatalx(int code, const char *, ...) PRINTF(2, 3) __attribute__((noreturn));

/* ---- util.c ------------------------------------------------------------ */

/* Allocation failure aborts: a worker that dies is replaced by the master. */
void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
char	*xstrdup(const char *);
/*
 * "[21/Nov/2026:06:00:00 +0000]", formatted once per second into a
 * static buffer of UTIL_LOG_TIME_SIZE bytes: never longer than
 * UTIL_LOG_TIME_SIZE - 1 characters, whatever the year.
 */
#define UTIL_LOG_TIME_SIZE	40
const char *util_log_time(time_t t);
/* Decimal digits of v and a NUL into buf (at least 21 bytes); returns
 * the number of digits, 1 to 20. */
size_t	 util_u64toa(uint64_t v, char *buf);

/* ---- mime.c ------------------------------------------------------------ */

/*
 * /etc/mime.types: "type ext ..." lines; on error the table in use stays
 * and err gets "path:line: why". mime_free() goes back to the built-in.
 */
int	 mime_load(const char *path, char *err, size_t errlen);
void	 mime_free(void);
/* Content-Type for a file name (path, len: not NUL-terminated); a
 * static string, application/octet-stream for an unknown extension. */
const char *mime_type(const char *path, size_t len);

/* What a file name's extension says about how its bytes are coded. */
enum {
	MIME_CODING_NONE,	/* plain: may be compressed on the fly */
	MIME_CODING_GZIP,	/* the gzip coding of its type (.svgz): sent
				 * with Content-Encoding: gzip (RFC 9110 8.4) */
	MIME_CODING_PACKED	/* compressed data in its own right (.gz, .tgz,
				 * .br, .zst, .zip ...): sent as it is, no
				 * Content-Encoding, never compressed again */
};
/* MIME_CODING_* for the last extension of (path, len), case-insensitive. */
int	 mime_coding(const char *path, size_t len);

/* ---- file.c ------------------------------------------------------------ */

int	 file_clean_path(const char *raw, size_t len, char *out, size_t outsz);
int	 file_is_hidden(const char *clean);
int	 file_open_beneath(int rootfd, const char *clean, int flags, int *errp);
int	 file_open_nolinks(int rootfd, const char *clean, int flags, int *errp);
int	 file_errno_status(int err);

/* ---- the channel between the master (proc.c) and a worker (worker.c) --- */

/*
 * One byte a message on a SOCK_SEQPACKET socketpair; the values are
 * letters so a log line or strace shows which.
 */
enum {
	CHAN_GO		= 'G',	/* to a worker: start accepting (a reload's wait) */
	CHAN_QUIT	= 'Q',	/* to a worker: drain and exit */
	CHAN_ACCESS_LOG	= 'L',	/* to a worker, + fd (SCM_RIGHTS): new access log */
	CHAN_ERROR_LOG	= 'E',	/* to a worker, + fd: new error log */
	CHAN_READY	= 'R',	/* from a worker: ready (accepting or held) */
	CHAN_RECYCLE	= 'X',	/* from a worker: max_requests reached, draining */
	CHAN_DRAINED	= 'D',	/* from a worker: listeners closed, accepts no more */
};

/* ---- worker.c ---------------------------------------------------------- */

struct proto;
struct tls;
struct conn;

struct listener {
	struct ev_io	 io;
	int		 fd;
	struct net_addr	 addr;
	char		 text[NET_ADDRSTRLEN];
	int		 keep;		/* reload bookkeeping (master.c) */
	int		 protocol;	/* PROTO_*: what its connections speak */
	int		 http2;		/* HTTP/2 on: prior knowledge (plain) */
	const struct proto *proto;	/* its code, set by the worker */
	const struct xprt *xprt;	/* its transport; NULL: the kernel socket */
	int		 status;	/* a status listener (status.c answers) */
	void		*xprt_cfg;	/* the transport's settings for it
					 * (TLS: struct tls_listen), set by
					 * the worker; copied into xio.cfg */
	unsigned	 tls:1;		/* speaks TLS (listen entry key "tls") */
	/* PROXY protocol required, from its trusted peers; NULL: off */
	const struct conf_listen *proxy;
	/*
	 * A stage before the transport starts (the worker sets it:
	 * conn_proxy_start() when proxy is set), or NULL: conn_adopt()
	 * hands it the new connection instead of calling conn_begin().
	 */
	void		(*stage)(struct conn *c, const struct listener *l);
};

struct worker_params {
	struct conf	*conf;
	struct listener	*listeners;
	size_t		 nlisteners;
	int		 chan_fd;	/* socketpair end to the master */
	int		 access_fd;	/* -1: access log off */
	unsigned	 slot;		/* its scoreboard slot (sb_attach()) */
	uint32_t	 generation;
	uid_t		 uid;		/* (uid_t)-1: no privilege drop */
	gid_t		 gid;
	const char	*user;
	int		 hold;		/* accept only after CHAN_GO */
	struct tls	*tls;		/* the generation's TLS contexts, or NULL */
};

/* The worker process: never returns. */
void	 worker_main(struct worker_params *p) __attribute__((noreturn));

/* ---- resp.c (the response builder) --------------------------------------- */

struct fcache_entry;

#define RESP_MAXSEG	64
#define RESP_HEAD_ROOM	128	/* in front of the fields: a status line, Server, Date */
#define RESP_TAIL_ROOM	32	/* behind them: Connection and the empty line */

enum { SEG_BUF, SEG_MEM, SEG_FILE };

struct seg {
	int		 kind;
	size_t		 len;
	union {
		size_t		 boff;	/* SEG_BUF: offset into resp.buf */
		const char	*mem;	/* SEG_MEM */
		off_t		 foff;	/* SEG_FILE: offset in resp.fd */
	} u;
};

/*
 * A response whatever the wire format (see resp.c for the layout of
 * buf): the status, the fields as "Name: value\r\n" bytes, the body as
 * segments, and the file it is sent from. Segment 0 is the head; the
 * protocol renders its bounds.
 */
struct resp {
	int		 status;
	int		 close;		/* the connection ends after this one */
	char		*buf;		/* head room, fields, tail room, generated bodies */
	size_t		 buf_len, buf_cap;
	size_t		 fields_end;	/* the fields are buf[RESP_HEAD_ROOM, fields_end) */
	struct seg	 segs[RESP_MAXSEG];
	int		 nsegs, cur;	/* next segment to send */
	size_t		 cur_done;	/* bytes of segs[cur] sent */
	size_t		 hdr_len;	/* head bytes, not counted in the log */
	uint64_t	 sent;		/* all bytes written */
	uint64_t	 send_start;	/* ev_now() ms when sending began */
	int		 fd;		/* SEG_FILE source, -1 */
	int		 fd_owned;	/* close fd when done (not the cache's) */
	struct fcache_entry *fe;	/* held while sending, or NULL */
	/*
	 * Fields resp_head_done() adds to every head, borrowed (the
	 * site's HSTS line over TLS); the HTTP layer sets them for each
	 * response, resp_reset() leaves them. NULL: none.
	 */
	const char	*extra;
	size_t		 extra_len;
	void		(*release)(void *);	/* e.g. drop a cache reference */
	void		*release_arg;
	char		*heap;		/* a malloc'd body to free (listing) */
};

const char *resp_status_text(int status);
/* Room for more bytes at buf + buf_len, to be filled in place. */
void	 resp_reserve(struct resp *r, size_t more);
void	 resp_reset(struct resp *r);
/* Start the head for status; fields are appended next, then resp_head_done(). */
void	 resp_begin(struct resp *r, int status);
void	 resp_head_done(struct resp *r);
void	 resp_printf(struct resp *r, const char *fmt, ...) PRINTF(2, 3);
void	 resp_append(struct resp *r, const char *p, size_t len);
void	 resp_seg_buf(struct resp *r, size_t off, size_t len);
void	 resp_seg_mem(struct resp *r, const char *p, size_t len);
void	 resp_seg_file(struct resp *r, off_t off, size_t len);
void	 resp_file_hold(struct resp *r, struct fcache_entry *fe, int fd);
void	 resp_file_mem(struct resp *r);
void	 resp_file_release(struct resp *r);
/* Fields after resp_head_done(), when no body bytes are in buf yet. */
void	 resp_add_fields(struct resp *r, const char *p, size_t len);

/* ---- the request, as the HTTP layer sees it (h1.c fills it) ----------------- */

/*
 * A request whatever the wire format: the parsed head (spans index
 * buf), the peer, the time it is answered at (Date, Expires, the log).
 * Everything is the protocol's and lives until the response is logged.
 */
struct request {
	const struct http_req *h;
	const char	*buf;
	const struct sockaddr *peer;
	time_t		 now;
	int		 tls;		/* came over TLS (HSTS on, no redirect) */
	uint8_t		 lim_state;	/* the connection's CLIMIT_S_* (climit.h):
					 * the protocol copies c->lim_state */
};

/* ---- conn.c (the connection core) ---------------------------------------- */

/*
 * Per-conn timeout classes; each has one fixed timeout (conn_init()
 * reads them from the configuration), so each list stays sorted. The
 * protocols choose theirs: h1.c HEADER to LINGER, echo.c ECHO; the core
 * uses SEND in its segment writer and takes room from IDLE
 * (conn_close_oldest_idle()). A new protocol adds its own.
 */
enum { CONN_T_HEADER, CONN_T_BODY, CONN_T_SEND, CONN_T_IDLE, CONN_T_LINGER,
    CONN_T_ECHO, CONN_T_PROXY, CONN_T_HANDSHAKE, CONN_T_H2_IDLE,
    CONN_T__COUNT };

#define CONN_INBUF	4096	/* a pool input buffer */

struct creq;
struct echo_sess;
struct h2_sess;

/*
 * One client connection. The core owns the list links, the socket and
 * its transport, the input buffer and the counters; state, keepalive,
 * nreq, rdhup/rdclosed and the union belong to the protocol.
 *
 * Every idle keep-alive connection costs this struct, so its members
 * are grouped by size (8, 4, then 1 byte) to leave no holes, and
 * conn.c allocates it in slabs, without a malloc header each. Check a
 * change with: gdb -batch -ex 'ptype /o struct conn' build/src/porter
 */
struct conn {
	struct ev_io	 io;
	/*
	 * In the core's timeout list tclass. Once closed, c is in no
	 * list, and next links the core's zombie and free lists instead.
	 */
	struct conn	*prev, *next;
	struct conn	*qnext;		/* in the core's answer queue */
	struct xprt_io	 xio;		/* the socket and its transport's state */
	const struct xprt *xp;		/* how bytes reach the socket */
	const struct proto *proto;	/* what the bytes mean */
	char		*in;		/* input buffer, NULL when idle */
	union {
		struct creq	*rq;	/* HTTP: NULL when idle */
		struct echo_sess *es;	/* echo: the session's counters */
		struct h2_sess	*h2;	/* HTTP/2: the nghttp2 session */
		/* the PROXY stage: the listener's protocol, until it starts */
		const struct proto *next_proto;
	};
	/*
	 * ev_now() ms, truncated: compared with conn_due(), which holds
	 * while deadlines stay within 24 days of now (timeouts are at
	 * most a day: conf.c).
	 */
	uint32_t	 deadline;
	uint32_t	 in_len, in_cap, in_off;
	uint32_t	 nreq;
	uint32_t	 lim_pos;	/* its place in the connection ledger */
	union {
		struct sockaddr		sa;
		struct sockaddr_in	sin;
		struct sockaddr_in6	sin6;
	} peer;
	int8_t		 tclass;	/* CONN_T_*; -1: in no list */
	uint8_t		 state;		/* the protocol's */
	unsigned	 closed:1;
	unsigned	 keepalive:1;
	unsigned	 readable:1;	/* the socket may hold unread bytes */
	unsigned	 registered:1;	/* in the worker's epoll set */
	unsigned	 queued:1;	/* in the answer queue */
	unsigned	 rdhup:1;	/* epoll saw the peer's FIN (echo) */
	unsigned	 rdclosed:1;	/* and a read returned it (echo) */
	unsigned	 status:1;	/* on a status listener: status.c answers */
	unsigned	 handshake:1;	/* the transport's start() is under way
					 * (core's; CONN_T_HANDSHAKE) */
	unsigned	 refused:1;	/* the transport refused the client in
					 * clear text: drain, then close */
	/*
	 * PROXY protocol (conn_proxy.c): peer is the client a trusted
	 * balancer named (conn_tcp_peer() finds the balancer), or peer is
	 * such a balancer itself (v2 LOCAL, v1 UNKNOWN: its health checks),
	 * which client limits must never hold back.
	 */
	unsigned	 proxied:1;
	unsigned	 balancer:1;
	unsigned	 lim_state:3;	/* climit.c's CLIMIT_S_*; 0: not counted */
};

/*
 * 152 bytes: with the slab, an idle keep-alive connection costs about
 * that plus 48 bytes of pools amortized over 10 000 connections (200 B
 * of RSS in bench/run --only memory), within the 210 the project holds
 * itself to. A member more must buy its room elsewhere, not raise this
 * bound (sizes go up in steps of 8: 153 bytes would be 160).
 */
_Static_assert(sizeof(struct conn) <= 152,
    "struct conn grew past 152 bytes: idle connections cost more");
_Static_assert(CONN_T__COUNT <= INT8_MAX, "conn.tclass is an int8_t");

/*
 * A protocol: what the core calls for a connection accepted on a
 * listener of that protocol. Every function may close c.
 *   start    just accepted; the transport is ready
 *   event    epoll says something (EPOLL* bits)
 *   answer   c's turn in the answer queue (conn_queue()), at the end of
 *            the batch of events
 *   timeout  c's timer ran out: answer (408) or close
 *   idle     may a graceful stop close c now? (nothing under way)
 *   close    c is closing, for whatever reason: free the protocol's
 *            state (not the input buffer, not the socket)
 */
struct proto {
	const char	*name;
	void		(*start)(struct conn *c);
	void		(*event)(struct conn *c, uint32_t events);
	void		(*answer)(struct conn *c);
	void		(*timeout)(struct conn *c);
	int		(*idle)(const struct conn *c);
	void		(*close)(struct conn *c);
	/* optional: the worker drains (HTTP/2 sends GOAWAY); may close c */
	void		(*drain)(struct conn *c);
};

/*
 * The core's life: conn_init() once per worker (the listeners are the
 * worker's, each with its proto set), conn_accepting() to listen or
 * not, conn_stop() when the worker drains (accept what is queued
 * unless take_queued is 0, then close the listeners).
 */
void	 conn_init(struct ev_loop *loop, const struct conf *conf,
	    struct listener *ls, size_t nls);
/*
 * Take fd (a connected, non-blocking socket, now owned) from peer as a
 * connection of listener l: its transport starts, then its protocol.
 * What accept does for each connection; tests call it with a fake
 * transport. Returns c, which may already be closed (a zombie until
 * conn_free_zombies()).
 */
struct conn *conn_adopt(int fd, const struct sockaddr *peer, socklen_t len,
	    const struct listener *l);
/*
 * The next stage of an adopted connection: its transport starts, then
 * its protocol (conn_adopt(), or the PROXY stage once the header is in).
 */
void	 conn_begin(struct conn *c);
void	 conn_accepting(int on);
void	 conn_stop(int take_queued);
int	 conn_draining(void);
size_t	 conn_count(void);
/* Connections in timeout class tclass now (CONN_T_IDLE: keep-alive). */
size_t	 conn_count_class(int tclass);
struct ev_loop *conn_loop(void);
const struct conf *conn_conf(void);
/* A request was answered (status, bytes sent with the head): for the
 * scoreboard and max_requests. */
void	 conn_count_request(int status, uint64_t bytes);
uint64_t conn_requests(void);

void	 conn_timeouts(uint64_t now);
void	 conn_close(struct conn *c);
void	 conn_free_zombies(void);
void	 conn_drain_idle(uint64_t now, uint64_t grace_ms);
/*
 * Make room for a new client (at max_connections, or out of descriptors):
 * close the keep-alive connection idle longest, skipping any whose next
 * request has arrived. 0: one was closed (its struct conn is a zombie
 * until conn_free_zombies()); -1: none idle. conn_have_idle() says
 * whether it would find one, closing nothing.
 */
int	 conn_close_oldest_idle(void);
int	 conn_have_idle(void);
void	 conn_queue(struct conn *c);
void	 conn_run_queue(void);

/*
 * Services to a protocol: restart c's timer of class tclass; join the
 * epoll set (extra: EPOLLOUT or 0; returns -1 and closes c on
 * failure); want EPOLLOUT or not; attach a CONN_INBUF input buffer from
 * the pool (c->in, c->in_cap), give it back (any size: not pool-sized
 * ones are freed).
 */
void	 conn_timer(struct conn *c, int tclass);
/*
 * Minimum data rates (mod_reqtimeout's MinRate): 1 if bytes since start
 * (ev_now() ms) average below min_rate bytes/s once a first timeout of
 * class tclass has passed; 0 otherwise, or when min_rate is 0.
 */
int	 conn_too_slow(uint64_t start, uint64_t bytes, int tclass,
	    int min_rate);
int	 conn_watch(struct conn *c, uint32_t extra);
/* Read and drop until the client's end of file (close) or an empty socket
 * (wait for more); the caller's timer bounds it. */
void	 conn_discard(struct conn *c);
void	 conn_want_write(struct conn *c, int on);
void	 conn_buf_attach(struct conn *c);
void	 conn_buf_release(struct conn *c);
/*
 * The segment writer: send r's segments from r->cur on through c's
 * transport. closing: the connection ends after them (the last bytes
 * may share a packet with the FIN). Returns 1 when all is out, 0 when
 * the socket is full (EPOLLOUT is on, c in CONN_T_SEND), -1 if c was
 * closed.
 */
int	 conn_send(struct conn *c, struct resp *r, int closing);

/* ---- conn_proxy.c (the PROXY protocol stage of the core) ----------------- */

/*
 * c was just accepted on l, a listener with proxy_protocol: from an
 * untrusted peer it is closed at once; else the header is awaited
 * (CONN_T_PROXY), then c->peer becomes the header's client and
 * conn_begin() runs. May close c.
 */
void	 conn_proxy_start(struct conn *c, const struct listener *l);
/* 1 if sa (AF_INET, AF_INET6, IPv4-mapped) is in cl's trusted list. */
int	 conn_proxy_trusted(const struct conf_listen *cl,
	    const struct sockaddr *sa);
/*
 * The real TCP peer of c, which is c->peer unless a PROXY header
 * replaced it (then getpeername(): only failure paths need it). 0, or
 * -1 with errno.
 */
int	 conn_tcp_peer(const struct conn *c, struct sockaddr_storage *ss,
	    socklen_t *len);

/* ---- h1.c (protocol "http": HTTP/1.1) ------------------------------------- */

extern const struct proto h1_proto;
void	 h1_init(const struct conf *conf);

/* ---- h2.c (protocol "http" with HTTP/2, nghttp2) ------------------------ */

/*
 * HTTP/2 by prior knowledge on a plain listener with http2 on: a
 * connection that starts with the client preface (RFC 9113 3.4) speaks
 * HTTP/2, any other goes to h1_proto with its first bytes.
 */
extern const struct proto h2_proto;
void	 h2_init(const struct conf *conf);
/*
 * Give back the pages of sessions idle for H2_RELEASE_MS by now (ms,
 * ev_now()): h2.c's own timer calls it; tests call it with a later now.
 */
void	 h2_release_idle(uint64_t now);
/*
 * Bytes c's HTTP/2 session holds in the heap: its own struct, nghttp2's
 * blocks (less the pages an idle session gave back) and its output
 * buffer. Streams' own records are not counted. 0 for a connection
 * without a session.
 */
size_t	 h2_session_bytes(const struct conn *c);
/* Once a second: frees the spare streams the last second did not need. */
void	 h2_tick(void);

/* ---- echo.c (protocol "echo": every byte comes back) --------------------- */

extern const struct proto echo_proto;

/* ---- http.c (request -> handler: site, method, path) ----------------------- */

/* The site a request is for, with its root. */
struct site {
	size_t		 idx;		/* into conf->sites */
	const struct conf_site *conf;
	int		 rootfd;	/* -1: the root could not be opened */
};

/* conf, one open root per conf->sites[] and the loop (the worker's). */
void	 http_init(const struct conf *conf, const int *rootfds,
	    struct ev_loop *loop);
/*
 * Build the response to q into r (status, fields, body). A method
 * porter does not know is 501, one it knows but does not allow 405 with
 * Allow (RFC 9110 9.1, 15.5.6, 15.6.2). The response to HEAD is the one
 * GET would get without its content (RFC 9110 9.3.2): dropped here,
 * once, whatever built the response.
 */
void	 http_handle(const struct request *q, struct resp *r);
/*
 * An error response (small HTML body, none for HEAD); the site's own
 * page if it has one. r->close is kept (the caller's). Also for
 * requests that failed to parse: the body is dropped only if the parser
 * got as far as a whole "HEAD" method.
 */
void	 http_error(const struct request *q, struct resp *r, int status);
void	 http_error_site(const struct request *q, struct resp *r,
	    const struct site *site, int status);
/*
 * The index of the site one of whose names matches the host name p
 * (len bytes, no port; RFC 9110 7.2 for Host, RFC 6066 3 for SNI):
 * exact names first, then the longest "*.suffix" wildcard; ASCII case
 * and trailing dots ignored. conf->nsites when none matches (the
 * caller picks its default). Pure: no worker state.
 */
size_t	 http_site_match(const struct conf *conf, const char *p, size_t len);

/* ---- status.c (the status listener: /metrics, /status, /health) -------- */

/* Once per worker: conf's status.allow, parsed. */
void	 status_init(const struct conf *conf);
/*
 * Answer q, a request on a status listener, into r: 403 for a peer
 * outside status.allow (q->peer: the TCP peer, never a PROXY address),
 * /metrics (Prometheus text 0.0.4), /status (text for people), /health
 * (200 "ok", or health.drain_status "draining" while the master says
 * drain), 404 for any other path, 405 for methods but GET and HEAD.
 * Never touches files; the body is built in r's buffer.
 */
void	 status_handle(const struct request *q, struct resp *r);
/* Whether answers on status listeners go to the access log. */
int	 status_logged(void);
/*
 * The /status text from a scoreboard snapshot, malloc'd; NULL when out
 * of memory. now_ms: ev_clock_ms(), for uptime and heartbeat ages.
 */
char	*status_text(const struct sb_totals *t, uint64_t now_ms);

/* ---- fcache.c ---------------------------------------------------------- */

struct fcache_entry {
	struct fcache_entry *hnext;	/* hash chain */
	struct fcache_entry *lprev, *lnext;	/* LRU, most recent first */
	uint32_t	 hash;
	size_t		 site;
	char		*path;
	size_t		 pathlen;
	int		 err;		/* 0, or the errno of the lookup */
	int		 fd;		/* regular files; -1 otherwise */
	struct stat	 st;
	char		*data;		/* the bytes of a small file, or NULL */
	uint64_t	 checked;	/* ev_now() ms of the last fstatat() */
	const char	*ctype;		/* mime_type() of path once serve_file()
					 * asked (static), else NULL */
	int		 coding;	/* and mime_coding(), with ctype */
	unsigned	 refs;
	int		 linked;	/* in the table */
};

/* rootfds: one open root per conf->sites[], the worker's; fcache_tick()
 * may replace one in place. */
int	 fcache_init(struct ev_loop *loop, const struct conf *conf,
	    int *rootfds);
struct fcache_entry *fcache_open(size_t site, int rootfd, const char *path);
void	 fcache_unref(struct fcache_entry *e);
void	 fcache_sync(void);
/*
 * Find path beneath the site root: from the cache when it can vouch for
 * it, else open and fstat. On success 0, *fdp the file (-1 for a cached
 * directory) and *fep the cache entry or NULL; give both back with
 * fcache_lookup_done() unless a response holds them. -1 and *errp.
 */
int	 fcache_lookup(size_t site, int rootfd, const char *path,
	    struct fcache_entry **fep, int *fdp, struct stat *st, int *errp);
void	 fcache_lookup_done(struct fcache_entry *fe, int fd);
/*
 * Once a second from the worker's tick: reopen a site root whose path
 * now names another directory (renamed away and replaced), onto the
 * same rootfds[] number (fcache_init's array, the worker's), and drop
 * that site's cached entries.
 */
void	 fcache_tick(void);

/* ---- acme.c ------------------------------------------------------------ */

/* 1 when clean (file_clean_path()'s output) is under
 * "/.well-known/acme-challenge/" (RFC 8555 8.3), else 0. */
int	 acme_path(const char *clean);
/*
 * Answer the challenge file clean (acme_path() holds) from directory dir
 * (absolute, the site's acme_challenge_root): 0 with r a 200 that holds
 * the file, or the error status for the caller to render (404 for no
 * such regular file, 403, 500), r untouched then. No symlink or ".."
 * leads out of dir (file_open_beneath()).
 */
int	 acme_serve(struct resp *r, const char *dir, const char *clean);

/* ---- https.c ----------------------------------------------------------- */

/*
 * redirect_https for a request q to the site cs that came over plain
 * HTTP. name (namelen bytes, no port, no trailing dot) is the request's
 * host if it names this site, else NULL: the caller vouches for it
 * (http_site_match()). clean is the cleaned path, or NULL when it has
 * none. Returns 0 when the request is served as usual (an ACME
 * challenge, RFC 8555 8.3; "OPTIONS *"), 1 with r a 301 (GET, HEAD) or
 * 308 (other methods, RFC 9110 15.4.9) to
 * https://HOST[:conf->https_port]PATH[?QUERY], or 421 for the caller to
 * render when there is no host to name. HOST is name if it is a plain
 * DNS name, else the site's first exact name: never a host the
 * configuration did not vouch for. PATH and query go as sent, escaped
 * where a Location needs it.
 */
int	 https_redirect(const struct conf *conf, const struct request *q,
	    struct resp *r, const struct conf_site *cs, const char *name,
	    size_t namelen, const char *clean);

/* ---- serve.c ----------------------------------------------------------- */

/*
 * The handlers, in the shape of OpenBSD httpd's server_file(): each
 * builds r for q and returns 0, or returns an error status for the
 * caller to render (http_error_site()). serve_file() takes fe and fd
 * (fcache_lookup()) in every case. serve_error_page() returns 1 if it
 * built the site's own page for status, 0 to use the built-in one.
 */
void	 serve_init(const struct conf *conf, struct ev_loop *loop);
/*
 * Run background gzip jobs for up to budget input bytes (GZCACHE_BG_SLICE
 * per loop turn; 0 runs none); returns the jobs left: the worker's loop
 * then polls instead of sleeping.
 */
size_t	 serve_background(size_t budget);
int	 serve_file(const struct request *q, struct resp *r,
	    const struct site *site, struct fcache_entry *fe, int fd,
	    const struct stat *st, const char *path);
int	 serve_listing(const struct request *q, struct resp *r,
	    const struct site *site, const char *path);
int	 serve_error_page(const struct request *q, struct resp *r,
	    const struct site *site, int status);

/* ---- accesslog.c ------------------------------------------------------- */

/*
 * Lines are built in a fixed buffer, so their size must be bounded by
 * construction: the request line, Referer and User-Agent are cut at
 * ACCESSLOG_FIELD_MAX bytes, and escaping turns each byte into at most
 * four ("\xNN"); addresses, the time and numbers have fixed maxima.
 */
#define ACCESSLOG_FIELD_MAX	2048
#define ACCESSLOG_QUOTED_MAX	(2 + 4 * ACCESSLOG_FIELD_MAX)
#define ACCESSLOG_NUM_MAX	20	/* digits of a uint64_t */
#define ACCESSLOG_LINE_MAX						\
	((NET_ADDRSTRLEN - 1) + 5 /* " - - " */ + (UTIL_LOG_TIME_SIZE - 1) +	\
	 3 * (1 + ACCESSLOG_QUOTED_MAX) + 3 * (1 + ACCESSLOG_NUM_MAX) + 1)

/* One access-log line's fields. Strings are (p, len) in the caller's
 * memory, p == NULL for "-"; any bytes may occur in them. */
struct accesslog_rec {
	const struct sockaddr *peer;	/* the client's address and port */
	time_t		 time;
	const char	*line;		/* the request line */
	size_t		 line_len;
	int		 status;
	uint64_t	 bytes;		/* body bytes sent; 0 is logged as "-" */
	const char	*referer;
	size_t		 referer_len;
	const char	*agent;
	size_t		 agent_len;
};

void	 accesslog_init(int fd);
void	 accesslog_set_fd(int fd);
/* Log rec (h1.c builds it from a request and its response): buffered;
 * written by accesslog_flush() or when the buffer might not hold one
 * more line. A failed write drops the buffered lines and is logged at
 * most once a second (log_limited()). */
void	 accesslog_append(const struct accesslog_rec *rec);
void	 accesslog_flush(void);
/*
 * Format rec as one line, newline included, into dst. Writes nothing and
 * returns 0 if cap < ACCESSLOG_LINE_MAX; else returns the line's length,
 * never more than ACCESSLOG_LINE_MAX. No NUL is added.
 */
size_t	 accesslog_format(char *dst, size_t cap,
	    const struct accesslog_rec *rec);

/* ---- systemd.c (the only file that talks to sd-daemon) ------------------- */

int	 systemd_listen_fds(int **fds);
void	 systemd_ready(const char *status);
void	 systemd_reloading(void);
void	 systemd_stopping(void);
void	 systemd_stopping_extend(uint64_t usec);
void	 systemd_status(const char *fmt, ...) PRINTF(1, 2);
uint64_t systemd_watchdog_usec(void);
void	 systemd_watchdog_ping(void);

/* ---- gen.c ------------------------------------------------------------- */

struct generation {
	uint32_t	 id;
	struct conf	*conf;
	struct listener	*ls;
	size_t		 nls;
	int		 target;	/* workers wanted */
	uid_t		 uid;
	gid_t		 gid;
	int		 access_fd;	/* -1: off */
	int		 access_stderr;
	int		 error_fd;	/* -1: the master's own error log */
	struct tls	*tls;		/* contexts of its certificates, or NULL
					 * (no TLS listener); gen_tls() */
};

void	 gen_clear(struct generation *g);
int	 gen_has_fd(const struct generation *g, int fd);
int	 gen_listen(struct generation *g, const struct generation *old,
	    int *sd_fds, int sd_nfds, char *err, size_t errlen);
void	 gen_close_listeners(struct generation *g,
	    const struct generation *other);
const char *gen_listener_kind(const struct listener *l);
int	 gen_user(struct generation *g, char *err, size_t errlen);
int	 gen_open_log(const char *path);
int	 gen_open_access(struct generation *g, char *err, size_t errlen);
int	 gen_open_error(struct generation *g, const struct conf *cur,
	    char *err, size_t errlen);
void	 gen_free(struct generation *g);
/*
 * Build g->tls for g->conf when a listener speaks TLS: every certificate
 * and key read and checked now, each logged (subject, names, days left;
 * a warning under 14 days). keys: the ticket ring (NULL: no tickets).
 * old: the serving generation, whose contexts of unchanged files are
 * shared rather than built again (NULL: none).
 * 0, or -1 with err ("file:line: certificate ...: reason").
 */
struct tls_ticket_keys;
int	 gen_tls(struct generation *g, const struct generation *old,
	    const struct tls_ticket_keys *keys, char *err, size_t errlen);

/* ---- proc.c (the master's worker table) ------------------------------ */

#define PROC_SLOTS	(2 * PORTER_MAX_WORKERS + 64)	/* = scoreboard slots */

enum { PW_FREE, PW_STARTING, PW_READY, PW_DRAINING };

/* One worker process as the master sees it. */
struct proc {
	pid_t		 pid;
	int		 state;		/* PW_* */
	int		 chan;		/* our end of the socketpair, -1 */
	struct ev_io	 io;
	uint32_t	 gen;		/* generation id */
	unsigned	 slot;		/* index in the table and the scoreboard */
	uint64_t	 started;	/* ev_clock_ms() at fork */
	uint64_t	 drain_start;
	unsigned	 recycled:1;	/* said CHAN_RECYCLE */
	unsigned	 killed:1;	/* SIGKILL sent: log it once */
	unsigned	 hung:1;	/* killed for missing heartbeats */
	unsigned	 proven:1;	/* has lived long enough to end a crash streak */
	unsigned	 listening:1;	/* may accept: not held, no CHAN_DRAINED yet */
};

/* What the master is told; each is called from the master's loop. */
struct proc_ops {
	/*
	 * A message from p (CHAN_READY, CHAN_RECYCLE, CHAN_DRAINED), after
	 * proc.c noted it.
	 */
	void	(*message)(struct proc *p, int msg);
	/*
	 * p was reaped (waitpid status), its scoreboard slot already folded;
	 * state is what it was (PW_*), p->state is PW_FREE now.
	 */
	void	(*exited)(struct proc *p, int state, int status);
	/* In a new child, before worker_main(): close the master's own fds. */
	void	(*child)(void);
};

/* Before the first fork: the table and the scoreboard. -1 with errno. */
int	 proc_init(struct ev_loop *loop, const struct proc_ops *ops);
/* The live workers in table order: for (p = proc_next(NULL); p; p = proc_next(p)). */
struct proc *proc_next(struct proc *p);
/* Workers of generation gen; draining and recycled ones only if asked. */
int	 proc_count(uint32_t gen, int include_draining);
int	 proc_count_ready(uint32_t gen);
int	 proc_alive(void);
const char *proc_state_name(const struct proc *p);
/* Its last loop turn (ev_clock_ms()), or its start if it has not run. */
uint64_t proc_heartbeat(const struct proc *p);
/* msg: a CHAN_* to a worker; fd: -1 or one to pass (the caller keeps it). */
void	 proc_send(struct proc *p, int msg, int fd);
/* Tell a held worker CHAN_GO; it counts as listening from now. */
void	 proc_go(struct proc *p);
/*
 * Workers of generations other than gen that may still accept: started
 * unheld or told CHAN_GO, not yet CHAN_DRAINED nor reaped.
 */
int	 proc_count_listening_besides(uint32_t gen);
/* Tell it CHAN_QUIT, once; it counts as draining from now. */
void	 proc_drain(struct proc *p);
void	 proc_kill(struct proc *p);
/*
 * Fork workers of g until it has g->target (not draining); other is the
 * generation whose descriptors the children must not keep (or NULL),
 * hold says wait for CHAN_GO. With backoff, starts wait for the crash
 * backoff. 0 when done, else the ms after which to call again.
 */
uint64_t proc_fill(struct generation *g, const struct generation *other,
	    int hold, int backoff);
/* waitpid() every exited child: fold, free, ops->exited(). */
void	 proc_reap(void);
/* Crash backoff: p died unexpectedly; returns the delay (ms) before the next start. */
uint64_t proc_crashed(const struct proc *p);
uint64_t proc_backoff(void);
void	 proc_backoff_reset(void);
/* From the master's tick: a worker of generation cur that lives ends a streak. */
void	 proc_check_proven(struct proc *p, uint32_t cur);

/* ---- master.c ---------------------------------------------------------- */

int	 master_run(struct conf *conf, const char *conf_path);

/* ---- ctl.c (the master's control socket) ------------------------------- */

/* What the master does for a client; ctl.c knows nothing else of it. */
struct ctl_handlers {
	/*
	 * "reload": start one (or note one for after the current reload) and
	 * set *want to the number of the reload whose end answers the client
	 * (see ctl_answer()); -1 when the master is stopping.
	 */
	int	(*reload)(uint32_t *want);
	/*
	 * "status": the text to send, "key: value" lines, malloc'd (ctl.c
	 * frees it); NULL on failure.
	 */
	char	*(*status)(void);
	/*
	 * "drain" (on 1) / "undrain" (on 0): set the drain flag every worker
	 * reads (sb_master_draining()); -1 when the master is stopping (it
	 * drains anyway and cannot be undrained).
	 */
	int	(*drain)(int on);
	/*
	 * Any other command line (e.g. "bans", "ban 192.0.2.7 600"): the
	 * whole answer, "ok\n..." or "error ...\n", malloc'd (ctl.c frees
	 * it); NULL: not a command it knows.
	 */
	char	*(*command)(const char *line);
};

char	*ctl_path(const char *pid_file);
/* h must outlive the socket (a static struct of the master's). */
void	 ctl_open(struct ev_loop *loop, const char *pid_file,
	    const struct ctl_handlers *h);
void	 ctl_close(void);
void	 ctl_close_fds(void);
void	 ctl_answer(int ok, const char *msg, uint32_t upto);

#endif /* PORTER_H */
