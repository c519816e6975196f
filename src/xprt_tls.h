/*
 * xprt_tls.h - what the TLS transport (xprt_tls.c, the xprt_tls
 * operations declared in xprt.h) tells about one connection, beyond
 * the transport contract. Needs only xprt.h; no OpenSSL headers.
 */
#ifndef PORTER_XPRT_TLS_H
#define PORTER_XPRT_TLS_H

#include "xprt.h"

/* Why the last start/read/write on a TLS connection failed (for a
 * debug log line; OpenSSL's first reason or "plain HTTP request"). */
const char *xprt_tls_error(void);
/* 1 when kernel TLS sends for the connection (SSL_sendfile in use). */
int	 xprt_tls_ktls_send(const struct xprt_io *xio);
/*
 * The protocol ALPN selected (RFC 7301): 1 with *name (not terminated)
 * and *len, or 0 when none was (the client offered nothing the
 * listener speaks, or no ALPN at all: HTTP/1.1).
 */
int	 xprt_tls_alpn(const struct xprt_io *xio, const unsigned char **name,
	    unsigned *len);
/*
 * 1 when the connection's certificate is the one SNI would choose for
 * host name (NUL-terminated, no port), so a request for it may be
 * served here; 0 when another certificate covers it (HTTP/2 reuses a
 * connection for other names: answer 421, RFC 9110 15.5.20).
 */
int	 xprt_tls_covers(const struct xprt_io *xio, const char *name);
/* "TLSv1.3", "TLSv1.2"; "" before a handshake. */
const char *xprt_tls_version(const struct xprt_io *xio);

#endif
