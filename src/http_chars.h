/*
 * http_chars.h - the character classes of HTTP's grammar (RFC 9110 5.6,
 * RFC 9112), shared by the request parser, the chunked-body reader and
 * percent-decoding. Stand-alone, header only: these sit on the parser's
 * hot path, so they must inline.
 */
#ifndef PORTER_HTTP_CHARS_H
#define PORTER_HTTP_CHARS_H

#include <string.h>

static inline int
http_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline int
http_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Value of a hex digit, -1 for anything else. */
static inline int
http_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* tchar, what a token is made of (RFC 9110 5.6.2). */
static inline int
http_tchar(unsigned char c)
{
	if (http_alpha(c) || http_digit(c))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* OWS and BWS are made of these. */
static inline int
http_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* VCHAR or obs-text: a field value's first and last bytes. */
static inline int
http_vchar(unsigned char c)
{
	return c > 0x20 && c != 0x7f;
}

#endif
