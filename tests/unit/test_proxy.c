/*
 * test_proxy.c - unit tests for the PROXY protocol header parser
 * (src/proxy.c), which they link alone.
 *
 * Every case, valid or not, is fed whole, byte by byte and split in two
 * at every position, and must reach the same result each time. Byte by
 * byte also pins down the byte at which the parser decides: a valid
 * header completes at its own last byte, and a malformed one fails at
 * the byte listed in the table (the first byte that shows it is wrong),
 * never later. Each partial buffer is a fresh heap copy of exactly the
 * bytes handed over, so ASan catches any read past them.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "proxy.h"

/* A string literal and its length, NULs included. */
#define RAW(s)		s, sizeof(s) - 1
#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* The v2 signature (2.2), as a literal to paste in front of a case. */
#define SIG2		"\r\n\r\n\0\r\nQUIT\n"
/* 39 characters, the longest IPv6 address */
#define V6MAX		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"

/* What may follow a header in the same read. */
static const char request[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
static const char client_hello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc";

/* ---- helpers ------------------------------------------------------------ */

/* Criterion copies parameters as bytes: pass indices, not pointers. */
static size_t *
case_indices(size_t n)
{
	size_t	*p = cr_malloc(n * sizeof(*p)), i;

	cr_assert_not_null(p);
	for (i = 0; i < n; i++)
		p[i] = i;
	return p;
}

static void
case_indices_free(struct criterion_test_params *crp)
{
	cr_free(crp->params);
}

static unsigned char *
copy(const void *raw, size_t len)
{
	unsigned char	*p = malloc(len > 0 ? len : 1);

	cr_assert_not_null(p);
	memcpy(p, raw, len);
	return p;
}

/* One call on a fresh parser over a heap copy of raw[0..len). */
static int
parse_once(struct proxy_parser *p, const void *raw, size_t len,
    uint32_t max, struct proxy_hdr *h)
{
	unsigned char	*b = copy(raw, len);
	int		 rv;

	proxy_init(p, max);
	rv = proxy_parse(p, b, len, h);
	free(b);
	return rv;
}

static void
same_result(const struct proxy_parser *pa, int rva,
    const struct proxy_hdr *a, const struct proxy_parser *pb, int rvb,
    const struct proxy_hdr *b, const char *ctx)
{
	cr_assert_eq(rva, rvb, "%s: return %d vs %d", ctx, rva, rvb);
	if (rva == PROXY_PARSE_ERROR)
		cr_assert_eq(pa->error, pb->error, "%s: error %s vs %s", ctx,
		    proxy_error_name(pa->error), proxy_error_name(pb->error));
	if (rva == PROXY_PARSE_DONE)
		cr_assert(memcmp(a, b, sizeof(*a)) == 0,
		    "%s: header differs", ctx);
}

/*
 * Parse raw whole, growing by one byte a call, and in two calls split at
 * every position; all must agree. When the outcome is not AGAIN, it must
 * appear exactly when the first `at` bytes are in (0: all of them), and
 * not one byte before. Returns the whole parse's result.
 */
static int
parse_everywhere(struct proxy_parser *out, struct proxy_hdr *hout,
    const void *raw, size_t len, uint32_t max, size_t at, const char *name)
{
	struct proxy_parser	 p;
	struct proxy_hdr	 h;
	unsigned char		*b;
	char			 ctx[160];
	size_t			 i, k;
	int			 rv, rv1;

	memset(hout, 0, sizeof(*hout));
	rv1 = parse_once(out, raw, len, max, hout);
	if (at == 0)
		at = len;

	/* growing buffer: a new copy each call, as after a realloc */
	proxy_init(&p, max);
	memset(&h, 0, sizeof(h));
	rv = proxy_parse(&p, "", 0, &h);
	cr_assert_eq(rv, PROXY_PARSE_AGAIN, "%s: empty buffer", name);
	for (i = 1; i <= len; i++) {
		b = copy(raw, i);
		rv = proxy_parse(&p, b, i, &h);
		free(b);
		if (rv != PROXY_PARSE_AGAIN)
			break;
	}
	snprintf(ctx, sizeof(ctx), "%s: byte by byte", name);
	same_result(&p, rv, &h, out, rv1, hout, ctx);
	if (rv1 != PROXY_PARSE_AGAIN)
		cr_assert_eq(i, rv1 == PROXY_PARSE_DONE ? hout->len : at,
		    "%s: decided after %zu bytes, want %zu", name, i,
		    rv1 == PROXY_PARSE_DONE ? (size_t)hout->len : at);

	for (k = 0; k <= len; k++) {
		proxy_init(&p, max);
		memset(&h, 0, sizeof(h));
		b = copy(raw, k);
		rv = proxy_parse(&p, b, k, &h);
		free(b);
		if (rv == PROXY_PARSE_AGAIN) {
			b = copy(raw, len);
			rv = proxy_parse(&p, b, len, &h);
			free(b);
		}
		snprintf(ctx, sizeof(ctx), "%s: split at %zu", name, k);
		same_result(&p, rv, &h, out, rv1, hout, ctx);
	}

	/* a finished parser stays finished, with the same answer */
	b = copy(raw, len);
	memset(&h, 0, sizeof(h));
	rv = proxy_parse(out, b, len, &h);
	free(b);
	snprintf(ctx, sizeof(ctx), "%s: call after the end", name);
	same_result(out, rv, &h, out, rv1, hout, ctx);
	return rv1;
}

/* raw followed by tail in one buffer; *len gets the total. */
static unsigned char *
with_tail(const void *raw, size_t len, const void *tail, size_t tlen,
    size_t *total)
{
	unsigned char	*b = malloc(len + tlen);

	cr_assert_not_null(b);
	memcpy(b, raw, len);
	memcpy(b + len, tail, tlen);
	*total = len + tlen;
	return b;
}

static void
addr_is(const union proxy_sockaddr *sa, int family, const char *addr,
    unsigned port, const char *ctx)
{
	char	buf[INET6_ADDRSTRLEN];

	cr_assert_eq(sa->sa.sa_family, family, "%s: family %d, want %d", ctx,
	    sa->sa.sa_family, family);
	if (family == AF_UNSPEC) {
		union proxy_sockaddr zero;

		memset(&zero, 0, sizeof(zero));
		cr_assert(memcmp(sa, &zero, sizeof(zero)) == 0,
		    "%s: AF_UNSPEC address not all zero", ctx);
		return;
	}
	if (family == AF_INET) {
		cr_assert_not_null(inet_ntop(AF_INET, &sa->sin.sin_addr, buf,
		    sizeof(buf)));
		cr_assert_eq(ntohs(sa->sin.sin_port), port, "%s: port %u",
		    ctx, ntohs(sa->sin.sin_port));
	} else {
		cr_assert_not_null(inet_ntop(AF_INET6, &sa->sin6.sin6_addr,
		    buf, sizeof(buf)));
		cr_assert_eq(ntohs(sa->sin6.sin6_port), port, "%s: port %u",
		    ctx, ntohs(sa->sin6.sin6_port));
		cr_assert_eq(sa->sin6.sin6_scope_id, 0, "%s", ctx);
		cr_assert_eq(sa->sin6.sin6_flowinfo, 0, "%s", ctx);
	}
	cr_assert_str_eq(buf, addr, "%s", ctx);
}

/* ---- valid headers ------------------------------------------------------ */

struct valid_case {
	const char	*name;
	const char	*raw;
	size_t		 len;		/* all of it is the header */
	int		 version;
	int		 command;
	int		 local;
	int		 family;	/* of src and dst; AF_UNSPEC if local */
	const char	*src;
	unsigned	 sport;
	const char	*dst;
	unsigned	 dport;
};

static const struct valid_case valid_cases[] = {
	/* version 1 (2.1) */
	{ "v1 TCP4", RAW("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"),
	    1, PROXY_CMD_PROXY, 0, AF_INET, "192.168.0.1", 56324,
	    "192.168.0.11", 443 },
	{ "v1 TCP4 largest",
	    RAW("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"),
	    1, PROXY_CMD_PROXY, 0, AF_INET, "255.255.255.255", 65535,
	    "255.255.255.255", 65535 },
	{ "v1 TCP4 zeros", RAW("PROXY TCP4 0.0.0.0 0.10.100.0 0 0\r\n"),
	    1, PROXY_CMD_PROXY, 0, AF_INET, "0.0.0.0", 0, "0.10.100.0", 0 },
	{ "v1 TCP6", RAW("PROXY TCP6 2001:db8::1 2001:db8::2 1234 80\r\n"),
	    1, PROXY_CMD_PROXY, 0, AF_INET6, "2001:db8::1", 1234,
	    "2001:db8::2", 80 },
	{ "v1 TCP6 short forms", RAW("PROXY TCP6 ::1 :: 1 2\r\n"),
	    1, PROXY_CMD_PROXY, 0, AF_INET6, "::1", 1, "::", 2 },
	{ "v1 TCP6 upper case", RAW("PROXY TCP6 2001:DB8::A FE80::1 9 10\r\n"),
	    1, PROXY_CMD_PROXY, 0, AF_INET6, "2001:db8::a", 9, "fe80::1", 10 },
	{ "v1 TCP6 largest (104 bytes)",
	    RAW("PROXY TCP6 " V6MAX " " V6MAX " 65535 65535\r\n"),
	    1, PROXY_CMD_PROXY, 0, AF_INET6, V6MAX, 65535, V6MAX, 65535 },
	{ "v1 TCP6 mapped IPv4 in hex",
	    RAW("PROXY TCP6 ::ffff:c000:201 ::1 5 6\r\n"),
	    1, PROXY_CMD_PROXY, 0, AF_INET6, "::ffff:192.0.2.1", 5, "::1", 6 },
	/* what nginx writes for an IPv4-mapped client (see proxy_v1_ipv6) */
	{ "v1 TCP6 dotted tail", RAW("PROXY TCP6 ::ffff:192.0.2.1 ::1 5 6\r\n"),
	    1, PROXY_CMD_PROXY, 0, AF_INET6, "::ffff:192.0.2.1", 5, "::1", 6 },
	{ "v1 UNKNOWN", RAW("PROXY UNKNOWN\r\n"),
	    1, PROXY_CMD_PROXY, 1, AF_UNSPEC, NULL, 0, NULL, 0 },
	{ "v1 UNKNOWN with addresses (107 bytes)",
	    RAW("PROXY UNKNOWN " V6MAX " " V6MAX " 65535 65535\r\n"),
	    1, PROXY_CMD_PROXY, 1, AF_UNSPEC, NULL, 0, NULL, 0 },
	{ "v1 UNKNOWN tail ignored", RAW("PROXY UNKNOWN  any\tthing \x01\r\n"),
	    1, PROXY_CMD_PROXY, 1, AF_UNSPEC, NULL, 0, NULL, 0 },

	/* version 2 (2.2) */
	{ "v2 TCP4", RAW(SIG2 "\x21\x11\x00\x0c" "\xc0\x00\x02\x01"
	    "\xc6\x33\x64\x07" "\xd4\x31" "\x01\xbb"),
	    2, PROXY_CMD_PROXY, 0, AF_INET, "192.0.2.1", 54321,
	    "198.51.100.7", 443 },
	{ "v2 TCP6", RAW(SIG2 "\x21\x21\x00\x24"
	    "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"
	    "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x02" "\x04\xd2" "\x00\x50"),
	    2, PROXY_CMD_PROXY, 0, AF_INET6, "2001:db8::1", 1234,
	    "2001:db8::2", 80 },
	{ "v2 TCP4 with TLVs", RAW(SIG2 "\x21\x11\x00\x1c"
	    "\x0a\x00\x00\x01" "\x0a\x00\x00\x02" "\x00\x01" "\x00\x02"
	    "\x01\x00\x02" "h2"			/* ALPN */
	    "\x04\x00\x00"			/* NOOP, empty */
	    "\x20\x00\x05" "\x01\0\0\0\0"),	/* SSL, no sub-TLV */
	    2, PROXY_CMD_PROXY, 0, AF_INET, "10.0.0.1", 1, "10.0.0.2", 2 },
	{ "v2 TCP6 with a TLV", RAW(SIG2 "\x21\x21\x00\x28"
	    "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01"
	    "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01" "\xff\xff" "\x00\x00"
	    "\xe0\x00\x01" "x"),
	    2, PROXY_CMD_PROXY, 0, AF_INET6, "::1", 65535, "::1", 0 },
	{ "v2 LOCAL", RAW(SIG2 "\x20\x00\x00\x00"),
	    2, PROXY_CMD_LOCAL, 1, AF_UNSPEC, NULL, 0, NULL, 0 },
	{ "v2 LOCAL with an address block", RAW(SIG2 "\x20\x11\x00\x0c"
	    "\x7f\x00\x00\x01" "\x7f\x00\x00\x01" "\x00\x01" "\x00\x02"),
	    2, PROXY_CMD_LOCAL, 1, AF_UNSPEC, NULL, 0, NULL, 0 },
	/* 2.2: LOCAL's family "is ignored", and so is its block */
	{ "v2 LOCAL ignores the family", RAW(SIG2 "\x20\xff\x00\x03" "abc"),
	    2, PROXY_CMD_LOCAL, 1, AF_UNSPEC, NULL, 0, NULL, 0 },
	{ "v2 LOCAL, short block for its family", RAW(SIG2 "\x20\x21\x00\x01"
	    "z"),
	    2, PROXY_CMD_LOCAL, 1, AF_UNSPEC, NULL, 0, NULL, 0 },
	{ "v2 PROXY UNSPEC", RAW(SIG2 "\x21\x00\x00\x00"),
	    2, PROXY_CMD_PROXY, 1, AF_UNSPEC, NULL, 0, NULL, 0 },
	{ "v2 PROXY UNSPEC, block ignored", RAW(SIG2 "\x21\x00\x00\x05"
	    "\x01\x02\x03\x04\x05"),
	    2, PROXY_CMD_PROXY, 1, AF_UNSPEC, NULL, 0, NULL, 0 },
	/* 2.2: valid combinations not implemented fall back to UNSPEC */
	{ "v2 UDP4 falls back", RAW(SIG2 "\x21\x12\x00\x0c"
	    "\x0a\x00\x00\x01" "\x0a\x00\x00\x02" "\x00\x35" "\x00\x35"),
	    2, PROXY_CMD_PROXY, 1, AF_UNSPEC, NULL, 0, NULL, 0 },
	{ "v2 UDP6 falls back", RAW(SIG2 "\x21\x22\x00\x24"
	    "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01"
	    "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01" "\x00\x35" "\x00\x35"),
	    2, PROXY_CMD_PROXY, 1, AF_UNSPEC, NULL, 0, NULL, 0 },
};

static void
check_valid(const struct valid_case *c, const struct proxy_hdr *h)
{
	cr_assert_eq(h->len, c->len, "%s: len %u, want %zu", c->name,
	    h->len, c->len);
	cr_assert_eq(h->version, c->version, "%s", c->name);
	cr_assert_eq(h->command, c->command, "%s", c->name);
	cr_assert_eq(h->local, c->local, "%s", c->name);
	addr_is(&h->src, c->family, c->src, c->sport, c->name);
	addr_is(&h->dst, c->family, c->dst, c->dport, c->name);
}

ParameterizedTestParameters(proxy, valid)
{
	return cr_make_param_array(size_t, case_indices(NELEM(valid_cases)),
	    NELEM(valid_cases), case_indices_free);
}

ParameterizedTest(size_t *i, proxy, valid)
{
	const struct valid_case *c = &valid_cases[*i];
	struct proxy_parser	 p;
	struct proxy_hdr	 h;
	int			 rv;

	rv = parse_everywhere(&p, &h, c->raw, c->len, 0, 0, c->name);
	cr_assert_eq(rv, PROXY_PARSE_DONE, "%s: rv %d (%s)", c->name, rv,
	    proxy_error_name(p.error));
	check_valid(c, &h);
}

ParameterizedTestParameters(proxy, valid_then_request)
{
	return cr_make_param_array(size_t, case_indices(NELEM(valid_cases)),
	    NELEM(valid_cases), case_indices_free);
}

/*
 * The request (or a TLS ClientHello) usually comes in the same read as
 * the header: the header ends exactly where it should, the rest is left.
 */
ParameterizedTest(size_t *i, proxy, valid_then_request)
{
	const struct valid_case *c = &valid_cases[*i];
	const struct { const char *s; size_t n; } tails[] = {
		{ request, sizeof(request) - 1 },
		{ client_hello, sizeof(client_hello) - 1 },
		{ RAW("\r\n") },
		{ c->raw, c->len },		/* a second header is data */
	};
	struct proxy_parser	 p;
	struct proxy_hdr	 h;
	unsigned char		*b;
	char			 name[160];
	size_t			 n, t;
	int			 rv;

	for (t = 0; t < NELEM(tails); t++) {
		b = with_tail(c->raw, c->len, tails[t].s, tails[t].n, &n);
		snprintf(name, sizeof(name), "%s + tail %zu", c->name, t);
		rv = parse_everywhere(&p, &h, b, n, 0, 0, name);
		free(b);
		cr_assert_eq(rv, PROXY_PARSE_DONE, "%s: rv %d (%s)", name, rv,
		    proxy_error_name(p.error));
		check_valid(c, &h);
	}
}


/* ---- malformed headers -------------------------------------------------- */

struct error_case {
	const char	*name;
	const char	*raw;
	size_t		 len;
	int		 error;
	size_t		 at;		/* fails once this many bytes are in;
					   0: all of them */
};

static const struct error_case error_cases[] = {
	/* detection: decided at the first byte that differs */
	{ "HTTP request", RAW("GET / HTTP/1.1\r\n\r\n"), PROXY_E_SIGNATURE, 1 },
	{ "TLS ClientHello", RAW("\x16\x03\x01\x02\x00"), PROXY_E_SIGNATURE,
	    1 },
	{ "NUL byte", RAW("\0PROXY"), PROXY_E_SIGNATURE, 1 },
	{ "lower-case proxy", RAW("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
	    PROXY_E_SIGNATURE, 1 },
	{ "PROXZ", RAW("PROXZ TCP4"), PROXY_E_SIGNATURE, 5 },
	{ "PROXY without space", RAW("PROXY\r\n"), PROXY_E_SIGNATURE, 6 },
	{ "PROXY with tab", RAW("PROXY\tTCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
	    PROXY_E_SIGNATURE, 6 },
	{ "PUT looks like P", RAW("PUT / HTTP/1.1\r\n"), PROXY_E_SIGNATURE, 2 },
	{ "v2 signature, 5th byte", RAW("\r\n\r\nX"), PROXY_E_SIGNATURE, 5 },
	{ "v2 signature, last byte", RAW("\r\n\r\n\0\r\nQUIT\r"),
	    PROXY_E_SIGNATURE, 12 },
	{ "v2 signature, CR LF CR LF CR", RAW("\r\n\r\n\r\n"),
	    PROXY_E_SIGNATURE, 5 },

	/* v1 syntax (2.1: "exactly one space", CRLF) */
	{ "v1 double space before protocol",
	    RAW("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), PROXY_E_SYNTAX, 0 },
	{ "v1 double space before address",
	    RAW("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"), PROXY_E_SYNTAX, 0 },
	{ "v1 double space before port",
	    RAW("PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n"), PROXY_E_SYNTAX, 0 },
	{ "v1 trailing space", RAW("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"),
	    PROXY_E_SYNTAX, 0 },
	{ "v1 sixth field", RAW("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"),
	    PROXY_E_SYNTAX, 0 },
	{ "v1 port missing", RAW("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"),
	    PROXY_E_SYNTAX, 0 },
	{ "v1 addresses missing", RAW("PROXY TCP4\r\n"), PROXY_E_SYNTAX, 0 },
	{ "v1 protocol missing", RAW("PROXY \r\n"), PROXY_E_SYNTAX, 0 },
	{ "v1 lone LF", RAW("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"),
	    PROXY_E_SYNTAX, 0 },
	{ "v1 lone CR", RAW("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX"),
	    PROXY_E_SYNTAX, 0 },
	{ "v1 CR CR LF", RAW("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n"),
	    PROXY_E_SYNTAX, 32 },
	{ "v1 UNKNOWN with lone LF", RAW("PROXY UNKNOWN\n"), PROXY_E_SYNTAX,
	    0 },
	{ "v1 UNKNOWN, LF in the tail", RAW("PROXY UNKNOWN a\nb\r\n"),
	    PROXY_E_SYNTAX, 16 },
	{ "v1 UNKNOWN, CR in the tail", RAW("PROXY UNKNOWN a\rb\r\n"),
	    PROXY_E_SYNTAX, 17 },
	{ "v1 LF right after PROXY", RAW("PROXY \n"), PROXY_E_SYNTAX, 0 },

	/* v1 protocol */
	{ "v1 TCP5", RAW("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"), PROXY_E_FAMILY,
	    0 },
	{ "v1 lower-case tcp4", RAW("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"),
	    PROXY_E_FAMILY, 0 },
	{ "v1 UDP4", RAW("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"), PROXY_E_FAMILY,
	    0 },
	{ "v1 UNKNOWNX", RAW("PROXY UNKNOWNX\r\n"), PROXY_E_FAMILY, 0 },
	{ "v1 unknown lower case", RAW("PROXY unknown\r\n"), PROXY_E_FAMILY,
	    0 },
	{ "v1 tab after TCP4", RAW("PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n"),
	    PROXY_E_FAMILY, 0 },

	/* v1 addresses (2.1: canonical, no leading zeros, right family) */
	{ "v1 octet 256", RAW("PROXY TCP4 256.1.1.1 5.6.7.8 1 2\r\n"),
	    PROXY_E_ADDRESS, 0 },
	{ "v1 leading zero", RAW("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"),
	    PROXY_E_ADDRESS, 0 },
	{ "v1 leading zero in last octet",
	    RAW("PROXY TCP4 1.2.3.4 5.6.7.08 1 2\r\n"), PROXY_E_ADDRESS, 0 },
	{ "v1 three octets", RAW("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"),
	    PROXY_E_ADDRESS, 0 },
	{ "v1 five octets", RAW("PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n"),
	    PROXY_E_ADDRESS, 0 },
	{ "v1 empty octet", RAW("PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n"),
	    PROXY_E_ADDRESS, 0 },
	{ "v1 trailing dot", RAW("PROXY TCP4 1.2.3.4. 5.6.7.8 1 2\r\n"),
	    PROXY_E_ADDRESS, 0 },
	{ "v1 four-digit octet", RAW("PROXY TCP4 1.2.3.1000 5.6.7.8 1 2\r\n"),
	    PROXY_E_ADDRESS, 0 },
	{ "v1 sign", RAW("PROXY TCP4 +1.2.3.4 5.6.7.8 1 2\r\n"),
	    PROXY_E_ADDRESS, 0 },
	{ "v1 hex octet", RAW("PROXY TCP4 0x1.2.3.4 5.6.7.8 1 2\r\n"),
	    PROXY_E_ADDRESS, 0 },
	{ "v1 one number", RAW("PROXY TCP4 16909060 5.6.7.8 1 2\r\n"),
	    PROXY_E_ADDRESS, 0 },
	{ "v1 IPv6 in TCP4", RAW("PROXY TCP4 ::1 5.6.7.8 1 2\r\n"),
	    PROXY_E_ADDRESS, 0 },
	{ "v1 bad destination", RAW("PROXY TCP4 1.2.3.4 5.6.7 1 2\r\n"),
	    PROXY_E_ADDRESS, 0 },
	{ "v1 IPv4 in TCP6", RAW("PROXY TCP6 1.2.3.4 ::1 1 2\r\n"),
	    PROXY_E_ADDRESS, 0 },
	{ "v1 dotted tail, leading zero",
	    RAW("PROXY TCP6 ::ffff:1.2.3.04 ::1 1 2\r\n"), PROXY_E_ADDRESS, 0 },
	{ "v1 dotted tail, three octets",
	    RAW("PROXY TCP6 ::ffff:1.2.3 ::1 1 2\r\n"), PROXY_E_ADDRESS, 0 },
	{ "v1 dotted head", RAW("PROXY TCP6 1.2.3.4:: ::1 1 2\r\n"),
	    PROXY_E_ADDRESS, 0 },
	{ "v1 dotted tail too long",
	    RAW("PROXY TCP6 1:2:3:4:5:6:7:1.2.3.4 ::1 1 2\r\n"),
	    PROXY_E_ADDRESS, 0 },
	{ "v1 two double colons", RAW("PROXY TCP6 1::2::3 ::1 1 2\r\n"),
	    PROXY_E_ADDRESS, 0 },
	{ "v1 five hex digits", RAW("PROXY TCP6 12345:: ::1 1 2\r\n"),
	    PROXY_E_ADDRESS, 0 },
	{ "v1 triple colon", RAW("PROXY TCP6 :::1 ::1 1 2\r\n"),
	    PROXY_E_ADDRESS, 0 },
	{ "v1 nine groups", RAW("PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n"),
	    PROXY_E_ADDRESS, 0 },
	{ "v1 seven groups", RAW("PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n"),
	    PROXY_E_ADDRESS, 0 },
	{ "v1 scope", RAW("PROXY TCP6 fe80::1%lo ::1 1 2\r\n"),
	    PROXY_E_ADDRESS, 0 },
	{ "v1 brackets", RAW("PROXY TCP6 [::1] ::1 1 2\r\n"),
	    PROXY_E_ADDRESS, 0 },
	{ "v1 single colon", RAW("PROXY TCP6 : ::1 1 2\r\n"),
	    PROXY_E_ADDRESS, 0 },
	{ "v1 IPv6 too long",
	    RAW("PROXY TCP6 0" V6MAX " ::1 1 2\r\n"), PROXY_E_ADDRESS, 0 },

	/* v1 ports (2.1: 0..65535, "heading zeroes are not permitted") */
	{ "v1 port 65536", RAW("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"),
	    PROXY_E_PORT, 0 },
	{ "v1 port 99999", RAW("PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n"),
	    PROXY_E_PORT, 0 },
	{ "v1 port six digits", RAW("PROXY TCP4 1.2.3.4 5.6.7.8 100000 2\r\n"),
	    PROXY_E_PORT, 0 },
	{ "v1 port leading zero", RAW("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"),
	    PROXY_E_PORT, 0 },
	{ "v1 port 00", RAW("PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n"),
	    PROXY_E_PORT, 0 },
	{ "v1 port negative", RAW("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n"),
	    PROXY_E_PORT, 0 },
	{ "v1 port plus", RAW("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n"),
	    PROXY_E_PORT, 0 },
	{ "v1 port hex", RAW("PROXY TCP6 ::1 ::1 1a 2\r\n"), PROXY_E_PORT, 0 },

	/* v1 length (2.1: CRLF within the first 107 bytes) */
	{ "v1 no CRLF in 107 bytes",
	    RAW("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"),
	    PROXY_E_TOO_LONG, 107 },
	{ "v1 UNKNOWN, 108 bytes",
	    RAW("PROXY UNKNOWN " V6MAX " " V6MAX " 65535 655350\r\n"),
	    PROXY_E_TOO_LONG, 107 },
	{ "v1 CR as the 107th byte",
	    RAW("PROXY UNKNOWN " V6MAX " " V6MAX " 65535 65535x\r\n"),
	    PROXY_E_TOO_LONG, 107 },

	/* v2 fixed fields, judged as soon as they arrive */
	{ "v2 version 1", RAW(SIG2 "\x11\x11\x00\x0c"), PROXY_E_VERSION, 13 },
	{ "v2 version 0", RAW(SIG2 "\x01\x11\x00\x0c"), PROXY_E_VERSION, 13 },
	{ "v2 version 3", RAW(SIG2 "\x31\x11\x00\x0c"), PROXY_E_VERSION, 13 },
	{ "v2 version 15", RAW(SIG2 "\xf0"), PROXY_E_VERSION, 13 },
	{ "v2 command 2", RAW(SIG2 "\x22\x11\x00\x0c"), PROXY_E_COMMAND, 13 },
	{ "v2 command 15", RAW(SIG2 "\x2f"), PROXY_E_COMMAND, 13 },
	{ "v2 family 4", RAW(SIG2 "\x21\x41\x00\x0c"), PROXY_E_FAMILY, 14 },
	{ "v2 protocol 3", RAW(SIG2 "\x21\x13\x00\x0c"), PROXY_E_FAMILY, 14 },
	{ "v2 UNSPEC over STREAM", RAW(SIG2 "\x21\x01\x00\x00"),
	    PROXY_E_FAMILY, 14 },
	{ "v2 INET over UNSPEC", RAW(SIG2 "\x21\x10\x00\x0c"),
	    PROXY_E_FAMILY, 14 },
	{ "v2 family 0xff", RAW(SIG2 "\x21\xff"), PROXY_E_FAMILY, 14 },
	{ "v2 TCP4 block 11 bytes", RAW(SIG2 "\x21\x11\x00\x0b"),
	    PROXY_E_LENGTH, 16 },
	{ "v2 TCP4 block empty", RAW(SIG2 "\x21\x11\x00\x00"), PROXY_E_LENGTH,
	    16 },
	{ "v2 TCP6 with a TCP4 block", RAW(SIG2 "\x21\x21\x00\x0c"),
	    PROXY_E_LENGTH, 16 },
	{ "v2 TCP6 block 35 bytes", RAW(SIG2 "\x21\x21\x00\x23"),
	    PROXY_E_LENGTH, 16 },
	{ "v2 UDP4 block 0", RAW(SIG2 "\x21\x12\x00\x00"), PROXY_E_LENGTH,
	    16 },
	{ "v2 UNIX block 215", RAW(SIG2 "\x21\x31\x00\xd7"), PROXY_E_LENGTH,
	    16 },
	{ "v2 UNIX dgram block 12", RAW(SIG2 "\x21\x32\x00\x0c"),
	    PROXY_E_LENGTH, 16 },
	{ "v2 length 2049", RAW(SIG2 "\x21\x11\x08\x01"), PROXY_E_TOO_LONG,
	    16 },
	{ "v2 length 65535", RAW(SIG2 "\x20\x00\xff\xff"), PROXY_E_TOO_LONG,
	    16 },

	/* v2 TLVs that lie about their length */
	{ "v2 TLV longer than the header", RAW(SIG2 "\x21\x11\x00\x0f"
	    "\x0a\x00\x00\x01" "\x0a\x00\x00\x02" "\x00\x01" "\x00\x02"
	    "\x04\x00\x01"), PROXY_E_TLV, 0 },
	{ "v2 TLV claims 65535", RAW(SIG2 "\x21\x11\x00\x14"
	    "\x0a\x00\x00\x01" "\x0a\x00\x00\x02" "\x00\x01" "\x00\x02"
	    "\x01\xff\xff" "abcde"), PROXY_E_TLV, 0 },
	{ "v2 second TLV lies", RAW(SIG2 "\x21\x11\x00\x15"
	    "\x0a\x00\x00\x01" "\x0a\x00\x00\x02" "\x00\x01" "\x00\x02"
	    "\x01\x00\x02" "h2" "\x02\x00\x02" "x"), PROXY_E_TLV, 0 },
	{ "v2 TLV header cut (1 byte)", RAW(SIG2 "\x21\x11\x00\x0d"
	    "\x0a\x00\x00\x01" "\x0a\x00\x00\x02" "\x00\x01" "\x00\x02"
	    "\x04"), PROXY_E_TLV, 0 },
	{ "v2 TLV header cut (2 bytes)", RAW(SIG2 "\x21\x11\x00\x0e"
	    "\x0a\x00\x00\x01" "\x0a\x00\x00\x02" "\x00\x01" "\x00\x02"
	    "\x04\x00"), PROXY_E_TLV, 0 },
	{ "v2 TCP6 TLV lies", RAW(SIG2 "\x21\x21\x00\x28"
	    "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01"
	    "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01" "\x00\x01" "\x00\x02"
	    "\x01\x00\x02" "x"), PROXY_E_TLV, 0 },
};

ParameterizedTestParameters(proxy, invalid)
{
	return cr_make_param_array(size_t, case_indices(NELEM(error_cases)),
	    NELEM(error_cases), case_indices_free);
}

ParameterizedTest(size_t *i, proxy, invalid)
{
	const struct error_case *c = &error_cases[*i];
	struct proxy_parser	 p;
	struct proxy_hdr	 h;
	unsigned char		*b;
	char			 name[160];
	size_t			 n;
	int			 rv;

	rv = parse_everywhere(&p, &h, c->raw, c->len, 0, c->at, c->name);
	cr_assert_eq(rv, PROXY_PARSE_ERROR, "%s: rv %d", c->name, rv);
	cr_assert_eq(p.error, c->error, "%s: %s, want %s", c->name,
	    proxy_error_name(p.error), proxy_error_name(c->error));

	/* what follows in the same read changes nothing */
	b = with_tail(c->raw, c->len, request, sizeof(request) - 1, &n);
	snprintf(name, sizeof(name), "%s + request", c->name);
	rv = parse_everywhere(&p, &h, b, n, 0, c->at ? c->at : c->len, name);
	free(b);
	cr_assert_eq(rv, PROXY_PARSE_ERROR, "%s: rv %d", name, rv);
	cr_assert_eq(p.error, c->error, "%s: %s", name,
	    proxy_error_name(p.error));
}

/* ---- built at run time -------------------------------------------------- */

/* A v2 header of n bytes in all: ver_cmd, fam, then filler. */
static unsigned char *
v2_header(unsigned ver_cmd, unsigned fam, size_t n, unsigned char fill)
{
	unsigned char	*b = malloc(n);

	cr_assert_not_null(b);
	cr_assert(n >= PROXY_V2_HEAD && n - PROXY_V2_HEAD <= 0xffff);
	memset(b, fill, n);
	memcpy(b, SIG2, 12);
	b[12] = (unsigned char)ver_cmd;
	b[13] = (unsigned char)fam;
	b[14] = (unsigned char)((n - PROXY_V2_HEAD) >> 8);
	b[15] = (unsigned char)(n - PROXY_V2_HEAD);
	return b;
}

/* 2.2: AF_UNIX is a valid family porter does not take over: fall back. */
Test(proxy, v2_unix_falls_back)
{
	static const unsigned fams[] = { 0x31, 0x32 };
	struct proxy_parser	 p;
	struct proxy_hdr	 h;
	unsigned char		*b;
	size_t			 k;
	int			 rv;

	for (k = 0; k < NELEM(fams); k++) {
		b = v2_header(0x21, fams[k], 16 + 216, '/');
		rv = parse_everywhere(&p, &h, b, 16 + 216, 0, 0, "v2 UNIX");
		free(b);
		cr_assert_eq(rv, PROXY_PARSE_DONE, "%s",
		    proxy_error_name(p.error));
		cr_assert_eq(h.len, 16 + 216);
		cr_assert_eq(h.version, 2);
		cr_assert_eq(h.command, PROXY_CMD_PROXY);
		cr_assert_eq(h.local, 1);
		addr_is(&h.src, AF_UNSPEC, NULL, 0, "v2 UNIX src");
		addr_is(&h.dst, AF_UNSPEC, NULL, 0, "v2 UNIX dst");
	}
}

/*
 * The cap counts the whole header: exactly max_v2 bytes pass, one more
 * fails as soon as the length field is in, before any of the block.
 */
Test(proxy, v2_cap)
{
	static const uint32_t maxes[] = { 0, 28, 100, 16 + 0xffff };
	struct proxy_parser	 p;
	struct proxy_hdr	 h;
	unsigned char		*b;
	uint32_t		 max;
	size_t			 k, n;
	int			 rv;

	for (k = 0; k < NELEM(maxes); k++) {
		max = maxes[k] != 0 ? maxes[k] : PROXY_V2_MAX_DEFAULT;
		/* TCP4, then one NOOP TLV filling up to max */
		n = max;
		b = v2_header(0x21, 0x11, n, 0);
		if (n > 28) {
			b[28] = 0x04;
			b[29] = (unsigned char)((n - 31) >> 8);
			b[30] = (unsigned char)(n - 31);
		}
		proxy_init(&p, maxes[k]);
		rv = proxy_parse(&p, b, n, &h);
		cr_assert_eq(rv, PROXY_PARSE_DONE, "max %u: %s", max,
		    proxy_error_name(p.error));
		cr_assert_eq(h.len, n);
		free(b);

		if (max - PROXY_V2_HEAD >= 0xffff)
			continue;	/* the format's own limit */
		b = v2_header(0x21, 0x11, n + 1, 0);
		proxy_init(&p, maxes[k]);
		rv = proxy_parse(&p, b, PROXY_V2_HEAD, &h);
		cr_assert_eq(rv, PROXY_PARSE_ERROR, "max %u + 1", max);
		cr_assert_eq(p.error, PROXY_E_TOO_LONG);
		free(b);
	}
	/* the default cap is what the design asks: 16 + 2048 */
	cr_assert_eq(PROXY_V2_MAX_DEFAULT, 2064);
}

/* A header cut short stays AGAIN: nothing is decoded from a prefix. */
Test(proxy, incomplete)
{
	static const struct { const char *s; size_t n; } cases[] = {
		{ RAW("P") },
		{ RAW("PROXY") },
		{ RAW("PROXY TCP4 1.2.3.4 5.6.7.8 1 2") },
		{ RAW("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r") },
		{ RAW("PROXY UNKNOWN") },
		{ RAW("\r") },
		{ RAW(SIG2) },
		{ RAW(SIG2 "\x21\x11\x00") },
		{ RAW(SIG2 "\x21\x11\x00\x0c" "\x0a\x00\x00\x01") },
		{ RAW(SIG2 "\x20\x00\x08\x00") },	/* LOCAL, 2048 to skip */
	};
	struct proxy_parser	 p;
	struct proxy_hdr	 h, sentinel;
	size_t			 k;
	int			 rv;

	memset(&sentinel, 0xa5, sizeof(sentinel));
	for (k = 0; k < NELEM(cases); k++) {
		h = sentinel;
		rv = parse_once(&p, cases[k].s, cases[k].n, 0, &h);
		cr_assert_eq(rv, PROXY_PARSE_AGAIN, "case %zu: rv %d (%s)", k,
		    rv, proxy_error_name(p.error));
		cr_assert(memcmp(&h, &sentinel, sizeof(h)) == 0,
		    "case %zu: *h written before the end", k);
	}
}

/* An error is final, and *h is left alone. */
Test(proxy, error_is_sticky)
{
	static const char good[] = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
	struct proxy_parser	 p;
	struct proxy_hdr	 h, sentinel;
	int			 rv;

	memset(&sentinel, 0xa5, sizeof(sentinel));
	h = sentinel;
	rv = parse_once(&p, RAW("PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n"), 0,
	    &h);
	cr_assert_eq(rv, PROXY_PARSE_ERROR);
	cr_assert_eq(p.error, PROXY_E_PORT);
	cr_assert(memcmp(&h, &sentinel, sizeof(h)) == 0);
	/* even when handed a good header afterwards */
	rv = proxy_parse(&p, good, sizeof(good) - 1, &h);
	cr_assert_eq(rv, PROXY_PARSE_ERROR);
	cr_assert_eq(p.error, PROXY_E_PORT);
	cr_assert(memcmp(&h, &sentinel, sizeof(h)) == 0);
}

/* Metric labels: one per reason, distinct, lower case and underscores. */
Test(proxy, error_names)
{
	const char	*a, *b;
	int		 i, j;

	cr_assert_str_eq(proxy_error_name(PROXY_E_NONE), "none");
	cr_assert_str_eq(proxy_error_name(PROXY_E_SIGNATURE), "bad_signature");
	cr_assert_str_eq(proxy_error_name(PROXY_E_TOO_LONG), "too_long");
	cr_assert_str_eq(proxy_error_name(-1), "unknown");
	cr_assert_str_eq(proxy_error_name(PROXY_E__COUNT), "unknown");
	for (i = 0; i < PROXY_E__COUNT; i++) {
		a = proxy_error_name(i);
		cr_assert_not_null(a, "%d", i);
		cr_assert(a[0] != '\0' && strspn(a, "abcdefghijklmnopqrstuvwxyz_")
		    == strlen(a), "%d: %s", i, a);
		cr_assert_str_neq(a, "unknown", "%d", i);
		for (j = 0; j < i; j++) {
			b = proxy_error_name(j);
			cr_assert_str_neq(a, b, "%d and %d", i, j);
		}
	}
}

/*
 * The contract says the buffer only grows, but a caller that breaks it
 * must not make the parser read past what it was handed (ASan checks).
 */
Test(proxy, shorter_buffer_after_done)
{
	static const char v1[] = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
	static const char v2[] = SIG2 "\x21\x00\x00\x02" "ab";
	static const struct { const char *s; size_t n; } cases[] = {
		{ v1, sizeof(v1) - 1 },
		{ v2, sizeof(v2) - 1 },
	};
	struct proxy_parser	 p;
	struct proxy_hdr	 h;
	unsigned char		*b;
	size_t			 k, cut;

	for (k = 0; k < NELEM(cases); k++) {
		cr_assert_eq(parse_once(&p, cases[k].s, cases[k].n, 0, &h),
		    PROXY_PARSE_DONE, "case %zu", k);
		for (cut = 0; cut < cases[k].n; cut++) {
			b = copy(cases[k].s, cut);
			cr_assert_eq(proxy_parse(&p, b, cut, &h),
			    PROXY_PARSE_AGAIN, "case %zu cut %zu", k, cut);
			free(b);
		}
	}
}
