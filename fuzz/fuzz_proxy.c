/*
 * fuzz_proxy.c - libFuzzer target for the PROXY protocol header parser
 * (src/proxy.c).
 *
 * Input: byte 0 picks the v2 cap (max_v2), bytes 1-4 seed the split
 * points, the rest is what a connection receives. Every piece is a
 * fresh heap copy of exactly the bytes received so far, so ASan sees
 * any read past them.
 *
 * Properties, from what proxy.h promises:
 *   - the outcome depends only on the bytes: the whole buffer at once,
 *     the bytes in random pieces to one parser, and each piece to a new
 *     parser all give the same return, error and header;
 *   - a decision never needs a byte past it: DONE comes as soon as
 *     h->len bytes are in, and more bytes after a DONE or an ERROR
 *     change nothing;
 *   - *h is written only on DONE;
 *   - a header is sane: v1 starts "PROXY ", ends in CRLF, is at most
 *     107 bytes; v2 starts with the signature and fits max_v2; relayed
 *     addresses are AF_INET or AF_INET6, both of one family; "local"
 *     ones are all zero;
 *   - the addresses and ports written back as a v1 line and as a v2
 *     header parse to the very same header fields.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

#define FUZZ_PROXY_HDR	5	/* config bytes before the stream */

struct fuzz_proxy_out {
	int			rv;
	int			error;
	struct proxy_hdr	h;
};

static uint32_t
fuzz_proxy_next(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* One call over an exactly sized heap copy of data[0..len). */
static int
fuzz_proxy_call(struct proxy_parser *p, const uint8_t *data, size_t len,
    struct proxy_hdr *h)
{
	uint8_t	*b;
	int	 rv;

	if ((b = malloc(len > 0 ? len : 1)) == NULL)
		abort();
	memcpy(b, data, len);
	rv = proxy_parse(p, b, len, h);
	free(b);
	return rv;
}

static void
fuzz_proxy_same(const struct fuzz_proxy_out *a, const struct fuzz_proxy_out *b,
    const char *what)
{
	if (a->rv == b->rv && (a->rv != PROXY_PARSE_ERROR ||
	    a->error == b->error) && (a->rv != PROXY_PARSE_DONE ||
	    memcmp(&a->h, &b->h, sizeof(a->h)) == 0))
		return;
	fprintf(stderr, "fuzz_proxy: %s: rv %d/%d, error %s/%s\n", what,
	    a->rv, b->rv, proxy_error_name(a->error),
	    proxy_error_name(b->error));
	abort();
}

static int
fuzz_proxy_zero(const union proxy_sockaddr *sa)
{
	static const union proxy_sockaddr zero;

	return memcmp(sa, &zero, sizeof(zero)) == 0;
}

static void
fuzz_proxy_check(const struct fuzz_proxy_out *o, const uint8_t *data,
    size_t len, uint32_t max_v2)
{
	const struct proxy_hdr *h = &o->h;

	if (o->rv == PROXY_PARSE_ERROR) {
		if (o->error <= PROXY_E_NONE || o->error >= PROXY_E__COUNT)
			abort();
		return;
	}
	if (o->rv != PROXY_PARSE_DONE)
		return;
	if (h->len > len || h->command > PROXY_CMD_PROXY || h->local > 1)
		abort();
	if (h->version == 1) {
		if (h->len > PROXY_V1_MAX || h->len < 8 ||
		    memcmp(data, "PROXY ", 6) != 0 ||
		    memcmp(data + h->len - 2, "\r\n", 2) != 0 ||
		    h->command != PROXY_CMD_PROXY)
			abort();
	} else if (h->version == 2) {
		if (h->len < PROXY_V2_HEAD || h->len > max_v2 ||
		    memcmp(data, "\r\n\r\n\0\r\nQUIT\n", 12) != 0 ||
		    (h->command == PROXY_CMD_LOCAL && !h->local))
			abort();
	} else
		abort();
	if (h->local) {
		if (!fuzz_proxy_zero(&h->src) || !fuzz_proxy_zero(&h->dst))
			abort();
	} else if (h->src.sa.sa_family != h->dst.sa.sa_family ||
	    (h->src.sa.sa_family != AF_INET && h->src.sa.sa_family != AF_INET6))
		abort();
}

/* Write h's addresses back as a v1 line and a v2 header; both must parse
 * to the same addresses and ports. */
static void
fuzz_proxy_roundtrip(const struct proxy_hdr *h)
{
	struct proxy_parser	p;
	struct proxy_hdr	r;
	char			a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	char			line[PROXY_V1_MAX + 1];
	uint8_t			v2[PROXY_V2_HEAD + 36];
	const void		*sa, *da;
	size_t			alen, n;
	int			fam, m;

	if (h->local)
		return;
	fam = h->src.sa.sa_family;
	if (fam == AF_INET) {
		sa = &h->src.sin.sin_addr;
		da = &h->dst.sin.sin_addr;
		alen = 4;
	} else {
		sa = &h->src.sin6.sin6_addr;
		da = &h->dst.sin6.sin6_addr;
		alen = 16;
	}
	if (inet_ntop(fam, sa, a, sizeof(a)) == NULL ||
	    inet_ntop(fam, da, b, sizeof(b)) == NULL)
		abort();
	m = snprintf(line, sizeof(line), "PROXY %s %s %s %u %u\r\n",
	    fam == AF_INET ? "TCP4" : "TCP6", a, b,
	    ntohs(fam == AF_INET ? h->src.sin.sin_port : h->src.sin6.sin6_port),
	    ntohs(fam == AF_INET ? h->dst.sin.sin_port : h->dst.sin6.sin6_port));
	if (m < 0 || (size_t)m >= sizeof(line))
		abort();
	proxy_init(&p, 0);
	if (fuzz_proxy_call(&p, (const uint8_t *)line, (size_t)m, &r) !=
	    PROXY_PARSE_DONE || r.len != (uint32_t)m || r.local ||
	    memcmp(&r.src, &h->src, sizeof(r.src)) != 0 ||
	    memcmp(&r.dst, &h->dst, sizeof(r.dst)) != 0) {
		fprintf(stderr, "fuzz_proxy: v1 round trip: %s", line);
		abort();
	}

	n = PROXY_V2_HEAD + 2 * alen + 4;
	memcpy(v2, "\r\n\r\n\0\r\nQUIT\n", 12);
	v2[12] = 0x21;
	v2[13] = fam == AF_INET ? 0x11 : 0x21;
	v2[14] = 0;
	v2[15] = (uint8_t)(n - PROXY_V2_HEAD);
	memcpy(v2 + 16, sa, alen);
	memcpy(v2 + 16 + alen, da, alen);
	memcpy(v2 + 16 + 2 * alen, fam == AF_INET ? &h->src.sin.sin_port :
	    &h->src.sin6.sin6_port, 2);
	memcpy(v2 + 18 + 2 * alen, fam == AF_INET ? &h->dst.sin.sin_port :
	    &h->dst.sin6.sin6_port, 2);
	proxy_init(&p, 0);
	if (fuzz_proxy_call(&p, v2, n, &r) != PROXY_PARSE_DONE ||
	    r.len != n || r.local ||
	    memcmp(&r.src, &h->src, sizeof(r.src)) != 0 ||
	    memcmp(&r.dst, &h->dst, sizeof(r.dst)) != 0)
		abort();
}

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t caps[8] = {
		0, PROXY_V2_HEAD, 28, 52, 232, 536, 4096, PROXY_V2_HEAD + 0xffff
	};
	static const uint8_t tail[] = "\nGET / HTTP/1.1\r\n\r\n";
	struct fuzz_proxy_out	 whole, o, fresh;
	struct proxy_parser	 p, q;
	struct proxy_hdr	 sentinel;
	const uint8_t		*in;
	uint8_t			*more;
	uint32_t		 max, seed;
	size_t			 len, got, step;

	if (size < FUZZ_PROXY_HDR)
		return 0;
	max = caps[data[0] & 7];
	memcpy(&seed, data + 1, 4);
	seed |= 1;
	in = data + FUZZ_PROXY_HDR;
	len = size - FUZZ_PROXY_HDR;
	memset(&sentinel, 0xa5, sizeof(sentinel));

	memset(&whole, 0, sizeof(whole));
	whole.h = sentinel;
	proxy_init(&p, max);
	whole.rv = fuzz_proxy_call(&p, in, len, &whole.h);
	whole.error = p.error;
	if (whole.rv != PROXY_PARSE_DONE &&
	    memcmp(&whole.h, &sentinel, sizeof(sentinel)) != 0)
		abort();
	fuzz_proxy_check(&whole, in, len, max == 0 ? PROXY_V2_MAX_DEFAULT :
	    max);

	/* random pieces to one parser, each prefix also to a new parser */
	memset(&o, 0, sizeof(o));
	proxy_init(&p, max);
	got = 0;
	do {
		step = 1 + fuzz_proxy_next(&seed) % 16;
		got = len - got < step ? len : got + step;
		o.rv = fuzz_proxy_call(&p, in, got, &o.h);
		o.error = p.error;

		memset(&fresh, 0, sizeof(fresh));
		proxy_init(&q, max);
		fresh.rv = fuzz_proxy_call(&q, in, got, &fresh.h);
		fresh.error = q.error;
		fuzz_proxy_same(&o, &fresh, "pieces vs a new parser");
	} while (o.rv == PROXY_PARSE_AGAIN && got < len);
	fuzz_proxy_same(&o, &whole, "pieces vs whole");
	if (o.rv == PROXY_PARSE_DONE) {
		/* exactly the header is enough */
		memset(&fresh, 0, sizeof(fresh));
		proxy_init(&q, max);
		fresh.rv = fuzz_proxy_call(&q, in, o.h.len, &fresh.h);
		fuzz_proxy_same(&fresh, &whole, "header alone");
		if (o.h.len > 0) {
			proxy_init(&q, max);
			if (fuzz_proxy_call(&q, in, o.h.len - 1, &fresh.h) !=
			    PROXY_PARSE_AGAIN)
				abort();
		}
		fuzz_proxy_roundtrip(&whole.h);
	}

	/* what follows a decision does not change it */
	if (whole.rv != PROXY_PARSE_AGAIN) {
		if ((more = malloc(len + sizeof(tail))) == NULL)
			abort();
		memcpy(more, in, len);
		memcpy(more + len, tail, sizeof(tail));
		memset(&o, 0, sizeof(o));
		proxy_init(&p, max);
		o.rv = fuzz_proxy_call(&p, more, len + sizeof(tail), &o.h);
		o.error = p.error;
		free(more);
		fuzz_proxy_same(&o, &whole, "with bytes after");
	}
	return 0;
}
