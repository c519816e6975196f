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
/* "TLSv1.3", "TLSv1.2"; "" before a handshake. */
const char *xprt_tls_version(const struct xprt_io *xio);

#endif
