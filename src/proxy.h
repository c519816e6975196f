/*
 * proxy.h - resumable PROXY protocol header parser, versions 1 and 2.
 *
 * The spec is HAProxy's doc/proxy-protocol.txt (2020/03/05): section 2.1
 * (v1, text), 2.2 (v2, binary, and its TLVs) and the detection rules at
 * the end of 2.2. Section 1 says a receiver must never guess: on a
 * listener configured for the protocol, bytes that are neither header
 * are an error (PROXY_E_SIGNATURE), never a request served as is.
 *
 * Stand-alone: needs nothing but libc. It does no I/O, no allocation and
 * no logging, like http_parse.h. The caller keeps the connection's bytes
 * in one buffer that starts at the connection's first byte and only
 * grows at the end; every call hands over the whole buffer so far and
 * the parser resumes where it stopped. On PROXY_PARSE_DONE the header is
 * h->len bytes long: the bytes after it are the request (or a TLS
 * ClientHello) and are never looked at.
 *
 * The result depends only on the bytes, never on how they were split
 * across reads. A mismatch in the signature is reported at the first
 * byte that differs ("GET /" fails at the 'G'); a v2 header's version,
 * command, family and length are judged as soon as their byte arrives.
 * A v1 line is decoded only once its CRLF is in (2.1: "The receiver must
 * wait for the CRLF sequence before starting to decode the addresses"),
 * a v2 address block and its TLVs once all of it is in (2.2). A header
 * split across reads is waited for (section 2: "Recommendation is to be
 * tolerant"); the caller bounds the wait with its own timeout.
 */
#ifndef PORTER_PROXY_H
#define PORTER_PROXY_H

#include <netinet/in.h>
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

/* 2.1: the longest v1 line, CRLF included ("PROXY UNKNOWN" + 2 IPv6...) */
#define PROXY_V1_MAX		107
/* 2.2: the fixed part of a v2 header, before the address block */
#define PROXY_V2_HEAD		16
/*
 * The default cap on a whole v2 header, bytes: 16 + 2048 for addresses
 * and TLVs (nginx allows 4096 in all). It keeps a header inside the
 * first 4 KiB input buffer of a connection.
 */
#define PROXY_V2_MAX_DEFAULT	(PROXY_V2_HEAD + 2048)

enum {
	PROXY_PARSE_ERROR = -1,	/* p->error says why; sticky */
	PROXY_PARSE_AGAIN = 0,	/* need more bytes */
	PROXY_PARSE_DONE = 1,	/* header complete: h->len bytes */
};

/*
 * Why a header was refused; small enough to be a metric label
 * (proxy_error_name()). Every one of them closes the connection.
 */
enum proxy_error {
	PROXY_E_NONE = 0,
	PROXY_E_SIGNATURE,	/* neither "PROXY " nor the v2 signature */
	PROXY_E_VERSION,	/* v2: version nibble is not 2 */
	PROXY_E_COMMAND,	/* v2: command is neither LOCAL nor PROXY */
	PROXY_E_FAMILY,		/* v1: not TCP4/TCP6/UNKNOWN; v2: family or
				   transport byte not in the spec */
	PROXY_E_LENGTH,		/* v2: length shorter than the family's
				   address block */
	PROXY_E_TOO_LONG,	/* v1: no CRLF in 107 bytes; v2: over the cap */
	PROXY_E_SYNTAX,		/* v1: spaces, fields, bare CR or LF */
	PROXY_E_ADDRESS,	/* v1: address malformed or of the wrong family */
	PROXY_E_PORT,		/* v1: port not 0..65535, or a leading zero */
	PROXY_E_TLV,		/* v2: a TLV runs past the header's end */
	PROXY_E__COUNT
};

/* The command, with v2's wire values (2.2, 13th byte). */
enum proxy_cmd {
	PROXY_CMD_LOCAL = 0,	/* v2 LOCAL: the proxy's own connection */
	PROXY_CMD_PROXY = 1,	/* relayed; every v1 line, UNKNOWN too */
};

/*
 * An address and port, laid out as struct conn's peer (porter.h) so the
 * caller copies src over it whole. Ports are in network byte order.
 */
union proxy_sockaddr {
	struct sockaddr		sa;
	struct sockaddr_in	sin;
	struct sockaddr_in6	sin6;
};

/* The parser's state: 12 bytes, private to proxy.c but for max_v2. */
struct proxy_parser {
	uint32_t	max_v2;		/* cap on a whole v2 header, bytes */
	uint32_t	pos;		/* bytes judged so far */
	uint8_t		version;	/* 0 until the first byte decides */
	uint8_t		error;		/* enum proxy_error once failed */
	uint16_t	state;
};

/* What a complete header says. */
struct proxy_hdr {
	uint32_t	len;		/* header bytes, CRLF and TLVs included */
	uint8_t		version;	/* 1 or 2 */
	uint8_t		command;	/* enum proxy_cmd */
	/*
	 * 1: use the connection's real endpoints; src and dst are then
	 * AF_UNSPEC. Set for v2 LOCAL, v1 UNKNOWN, and v2 PROXY with a
	 * family porter does not take over (AF_UNSPEC, AF_UNIX, UDP): 2.2
	 * lets a receiver accept those "and use the real endpoint
	 * addresses", and asks one that does not implement a valid
	 * combination to fall back to that.
	 */
	uint8_t		local;
	union proxy_sockaddr src;	/* the client */
	union proxy_sockaddr dst;	/* the address the client connected to */
};

/*
 * Start a parser for a new connection. max_v2 caps a whole v2 header in
 * bytes (16 + addresses + TLVs); 0 means PROXY_V2_MAX_DEFAULT. A v1 line
 * is always capped at PROXY_V1_MAX, as 2.1 says.
 */
void	 proxy_init(struct proxy_parser *p, uint32_t max_v2);

/*
 * Parse the header at the start of buf[0..len). buf holds the bytes
 * received so far, from the first; its prefix must not change between
 * calls (it may move). Returns PROXY_PARSE_AGAIN until the header is
 * complete, then PROXY_PARSE_DONE with *h filled, or PROXY_PARSE_ERROR
 * with p->error set. *h is written only on DONE. A call after DONE
 * returns DONE again with the same *h; after ERROR, ERROR again.
 *
 * Nothing past the header is read: on DONE, buf[h->len..len) is the
 * caller's. Nothing past buf[len) is ever read, even when a v2 length or
 * a TLV length says otherwise.
 *
 * Since the outcome depends on the bytes alone, a caller may also throw
 * the parser away between calls and start a fresh one; it then rescans
 * at most max_v2 bytes.
 */
int	 proxy_parse(struct proxy_parser *p, const void *buf, size_t len,
	    struct proxy_hdr *h);

/* "bad_signature", "too_long", ...: a metric label; "none" for 0. */
const char *proxy_error_name(int error);

#endif
