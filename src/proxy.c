/*
 * proxy.c - resumable PROXY protocol header parser (HAProxy's
 * doc/proxy-protocol.txt, versions 1 and 2). proxy.h has the contract.
 *
 * The fixed parts (the signatures, v2's version, command, family and
 * length bytes) are judged one byte at a time as they arrive, so a
 * connection that is not a PROXY header fails at its first wrong byte.
 * The variable part (a v1 line's fields, a v2 address block and TLVs)
 * is decoded in one pass once all of it is in, as 2.1 and 2.2 require;
 * that pass reads the buffer alone, so the parser keeps no copy of it.
 *
 * The reading is strict wherever 2.1 and 2.2 say "exactly", "must" or
 * "rejected as invalid": the addresses end up in logs, client limits
 * and bans, so a header that two receivers could read two ways is
 * refused rather than guessed at.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proxy.h"

/* p->state */
enum {
	PS_HEAD = 0,		/* v1: looking for the CRLF */
	PS_DONE,		/* v1: CRLF found, p->pos is the line's length */
};

static const unsigned char proxy_sig1[6] = { 'P', 'R', 'O', 'X', 'Y', ' ' };
static const unsigned char proxy_sig2[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};

static const char *const proxy_error_names[PROXY_E__COUNT] = {
	[PROXY_E_NONE] = "none",
	[PROXY_E_SIGNATURE] = "bad_signature",
	[PROXY_E_VERSION] = "bad_version",
	[PROXY_E_COMMAND] = "bad_command",
	[PROXY_E_FAMILY] = "bad_family",
	[PROXY_E_LENGTH] = "bad_length",
	[PROXY_E_TOO_LONG] = "too_long",
	[PROXY_E_SYNTAX] = "bad_syntax",
	[PROXY_E_ADDRESS] = "bad_address",
	[PROXY_E_PORT] = "bad_port",
	[PROXY_E_TLV] = "bad_tlv",
};

void
proxy_init(struct proxy_parser *p, uint32_t max_v2)
{
	memset(p, 0, sizeof(*p));
	p->max_v2 = max_v2 != 0 ? max_v2 : PROXY_V2_MAX_DEFAULT;
}

const char *
proxy_error_name(int error)
{
	if (error < 0 || error >= PROXY_E__COUNT)
		return "unknown";
	return proxy_error_names[error];
}

static int
proxy_fail(struct proxy_parser *p, int error)
{
	p->error = (uint8_t)error;
	return PROXY_PARSE_ERROR;
}

/* ---- version 1 ------------------------------------------------------------ */

static int
proxy_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int
proxy_hex(unsigned char c)
{
	return proxy_digit(c) || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

/*
 * 2.1: a decimal number in 0..max, "heading zeroes are not permitted".
 * Returns the value, or -1.
 */
static long
proxy_v1_number(const unsigned char *s, size_t n, long max)
{
	long	v = 0;
	size_t	i;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (!proxy_digit(s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= max ? v : -1;
}

/* 2.1: "exactly 4 integers in the range [0..255]", one dot between. */
static int
proxy_v1_ipv4(const unsigned char *s, size_t n, struct in_addr *a)
{
	unsigned char	 b[4];
	size_t		 i = 0, start;
	long		 v;
	int		 k;

	for (k = 0; k < 4; k++) {
		if (k > 0) {
			if (i >= n || s[i] != '.')
				return -1;
			i++;
		}
		start = i;
		while (i < n && i - start < 4 && proxy_digit(s[i]))
			i++;
		if ((v = proxy_v1_number(s + start, i - start, 255)) < 0)
			return -1;
		b[k] = (unsigned char)v;
	}
	if (i != n)
		return -1;
	memcpy(a, b, sizeof(b));
	return 0;
}

/*
 * 2.1: hex groups and colons with at most one "::", 128 bits exactly:
 * inet_pton's grammar, without a scope ("%eth0") or brackets. It also
 * takes RFC 4291 2.2's dotted tail ("::ffff:192.0.2.1", leading zeros
 * refused), which 2.1 does not list but real senders write: nginx's
 * ngx_inet6_ntop() prints IPv4-mapped clients of a dual-stack listener
 * that way, and HAProxy and nginx read it back. A bare IPv4 address is
 * no IPv6 address and fails.
 */
static int
proxy_v1_ipv6(const unsigned char *s, size_t n, struct in6_addr *a)
{
	char	tmp[40];
	size_t	i;

	if (n < 2 || n >= sizeof(tmp))
		return -1;
	for (i = 0; i < n; i++)
		if (!proxy_hex(s[i]) && s[i] != ':' && s[i] != '.')
			return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return inet_pton(AF_INET6, tmp, a) == 1 ? 0 : -1;
}

static int
proxy_v1_addr(int family, const unsigned char *s, size_t n,
    union proxy_sockaddr *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sa.sa_family = (sa_family_t)family;
	if (family == AF_INET)
		return proxy_v1_ipv4(s, n, &sa->sin.sin_addr);
	return proxy_v1_ipv6(s, n, &sa->sin6.sin6_addr);
}

static void
proxy_v1_port(union proxy_sockaddr *sa, long port)
{
	if (sa->sa.sa_family == AF_INET)
		sa->sin.sin_port = htons((uint16_t)port);
	else
		sa->sin6.sin6_port = htons((uint16_t)port);
}

/*
 * Decode a complete line b[0..n), CRLF included, whose "PROXY " prefix
 * and line end were checked by the scan. Fields are split at single
 * spaces; an empty field is a second space.
 */
static int
proxy_v1_decode(const unsigned char *b, size_t n, struct proxy_hdr *h)
{
	const unsigned char	*s = b + sizeof(proxy_sig1), *end = b + n - 2;
	const unsigned char	*f[5];
	size_t			 fl[5];
	long			 sport, dport;
	int			 family = AF_INET, k;

	for (k = 0; k < 5; k++) {
		if (k > 0) {
			if (s == end)
				return PROXY_E_SYNTAX;	/* field missing */
			s++;				/* the space */
		}
		f[k] = s;
		while (s < end && *s != ' ')
			s++;
		fl[k] = (size_t)(s - f[k]);
		if (fl[k] == 0)
			return PROXY_E_SYNTAX;
		/* 2.1: after UNKNOWN, ignore anything up to the CRLF */
		if (k == 0 && fl[0] == 7 && memcmp(f[0], "UNKNOWN", 7) == 0) {
			h->local = 1;
			return PROXY_E_NONE;
		}
		if (k == 0) {
			if (fl[0] == 4 && memcmp(f[0], "TCP4", 4) == 0)
				family = AF_INET;
			else if (fl[0] == 4 && memcmp(f[0], "TCP6", 4) == 0)
				family = AF_INET6;
			else
				return PROXY_E_FAMILY;
		}
	}
	if (s != end)
		return PROXY_E_SYNTAX;	/* a sixth field, or a trailing space */

	if (proxy_v1_addr(family, f[1], fl[1], &h->src) == -1 ||
	    proxy_v1_addr(family, f[2], fl[2], &h->dst) == -1)
		return PROXY_E_ADDRESS;
	if ((sport = proxy_v1_number(f[3], fl[3], 65535)) < 0 ||
	    (dport = proxy_v1_number(f[4], fl[4], 65535)) < 0)
		return PROXY_E_PORT;
	proxy_v1_port(&h->src, sport);
	proxy_v1_port(&h->dst, dport);
	return PROXY_E_NONE;
}

/*
 * Find the CRLF within PROXY_V1_MAX bytes. 2.1: "The receiver must not
 * tolerate a single CR or LF character to end the line"; a bare CR or LF
 * anywhere in the line, even in an UNKNOWN line's ignored tail, is
 * refused too, since a receiver that skipped it would end the line
 * somewhere else than one that did not.
 */
static int
proxy_v1(struct proxy_parser *p, const unsigned char *b, size_t len,
    struct proxy_hdr *h)
{
	struct proxy_hdr	r;
	int			e;

	for (; p->state == PS_HEAD && p->pos < len; p->pos++) {
		if (p->pos < sizeof(proxy_sig1)) {
			if (b[p->pos] != proxy_sig1[p->pos])
				return proxy_fail(p, PROXY_E_SIGNATURE);
			continue;
		}
		if (p->pos >= PROXY_V1_MAX)
			break;
		if (b[p->pos] == '\n') {
			if (b[p->pos - 1] != '\r')
				return proxy_fail(p, PROXY_E_SYNTAX);
			p->state = PS_DONE;
		} else if (b[p->pos - 1] == '\r')
			return proxy_fail(p, PROXY_E_SYNTAX);
	}
	if (p->state == PS_HEAD) {
		if (p->pos >= PROXY_V1_MAX)
			return proxy_fail(p, PROXY_E_TOO_LONG);
		return PROXY_PARSE_AGAIN;
	}
	if (len < p->pos)
		return PROXY_PARSE_AGAIN;	/* a caller's shorter buffer */

	/* the loop's last p->pos++ stepped past the LF */
	memset(&r, 0, sizeof(r));
	r.len = p->pos;
	r.version = 1;
	r.command = PROXY_CMD_PROXY;
	if ((e = proxy_v1_decode(b, p->pos, &r)) != PROXY_E_NONE)
		return proxy_fail(p, e);
	*h = r;
	return PROXY_PARSE_DONE;
}

/* ---- version 2 ------------------------------------------------------------ */

/*
 * 2.2: the address block's size for each transport/family byte the spec
 * lists as valid ("In practice, the following protocol bytes are
 * expected"); -1 for every other byte, which "must be rejected".
 */
static int
proxy_v2_block(unsigned fam)
{
	switch (fam) {
	case 0x00:		/* UNSPEC */
		return 0;
	case 0x11:		/* TCP over IPv4 */
	case 0x12:		/* UDP over IPv4 */
		return 12;
	case 0x21:		/* TCP over IPv6 */
	case 0x22:		/* UDP over IPv6 */
		return 36;
	case 0x31:		/* UNIX stream */
	case 0x32:		/* UNIX datagram */
		return 216;
	default:
		return -1;
	}
}

/* 2.2: TLVs fill the rest of the header exactly, none runs past it. */
static int
proxy_v2_tlvs(const unsigned char *b, size_t off, size_t end)
{
	size_t	vlen;

	while (off < end) {
		if (end - off < 3)
			return -1;
		vlen = (size_t)b[off + 1] << 8 | b[off + 2];
		if (vlen > end - off - 3)
			return -1;
		off += 3 + vlen;
	}
	return 0;
}

/* Decode a complete header b[0..n) whose fixed part was checked. */
static int
proxy_v2_decode(const unsigned char *b, size_t n, struct proxy_hdr *h)
{
	unsigned	fam = b[13];

	h->command = b[12] & 0x0F;
	/*
	 * 2.2, LOCAL: "discard the protocol block including the family
	 * which is ignored". With the family ignored, where addresses end
	 * and TLVs begin is unknown, so the whole block is skipped.
	 */
	if (h->command == PROXY_CMD_LOCAL || (fam != 0x11 && fam != 0x21)) {
		h->local = 1;
		return PROXY_E_NONE;
	}
	if (fam == 0x11) {
		h->src.sin.sin_family = AF_INET;
		h->dst.sin.sin_family = AF_INET;
		memcpy(&h->src.sin.sin_addr, b + 16, 4);
		memcpy(&h->dst.sin.sin_addr, b + 20, 4);
		memcpy(&h->src.sin.sin_port, b + 24, 2);
		memcpy(&h->dst.sin.sin_port, b + 26, 2);
	} else {
		h->src.sin6.sin6_family = AF_INET6;
		h->dst.sin6.sin6_family = AF_INET6;
		memcpy(&h->src.sin6.sin6_addr, b + 16, 16);
		memcpy(&h->dst.sin6.sin6_addr, b + 32, 16);
		memcpy(&h->src.sin6.sin6_port, b + 48, 2);
		memcpy(&h->dst.sin6.sin6_port, b + 50, 2);
	}
	if (proxy_v2_tlvs(b, PROXY_V2_HEAD + (size_t)proxy_v2_block(fam),
	    n) == -1)
		return PROXY_E_TLV;
	return PROXY_E_NONE;
}

static int
proxy_v2(struct proxy_parser *p, const unsigned char *b, size_t len,
    struct proxy_hdr *h)
{
	struct proxy_hdr	r;
	size_t			n;
	int			block, e;

	for (; p->pos < len && p->pos < PROXY_V2_HEAD; p->pos++) {
		if (p->pos < sizeof(proxy_sig2)) {
			if (b[p->pos] != proxy_sig2[p->pos])
				return proxy_fail(p, PROXY_E_SIGNATURE);
		} else if (p->pos == 12) {
			if (b[12] >> 4 != 2)
				return proxy_fail(p, PROXY_E_VERSION);
			if ((b[12] & 0x0F) > PROXY_CMD_PROXY)
				return proxy_fail(p, PROXY_E_COMMAND);
		} else if (p->pos == 13) {
			/* LOCAL ignores the family (see proxy_v2_decode) */
			if ((b[12] & 0x0F) == PROXY_CMD_PROXY &&
			    proxy_v2_block(b[13]) == -1)
				return proxy_fail(p, PROXY_E_FAMILY);
		} else if (p->pos == 15) {
			n = PROXY_V2_HEAD + ((size_t)b[14] << 8 | b[15]);
			if (n > p->max_v2)
				return proxy_fail(p, PROXY_E_TOO_LONG);
			block = proxy_v2_block(b[13]);
			if ((b[12] & 0x0F) == PROXY_CMD_PROXY &&
			    n - PROXY_V2_HEAD < (size_t)block)
				return proxy_fail(p, PROXY_E_LENGTH);
		}
	}
	if (p->pos < PROXY_V2_HEAD || len < PROXY_V2_HEAD)
		return PROXY_PARSE_AGAIN;	/* len: a caller's shorter buffer */

	/* 2.2: "The receiver must not start to parse an address before the
	 * whole address block is received." */
	n = PROXY_V2_HEAD + ((size_t)b[14] << 8 | b[15]);
	if (len < n)
		return PROXY_PARSE_AGAIN;
	memset(&r, 0, sizeof(r));
	r.len = (uint32_t)n;
	r.version = 2;
	if ((e = proxy_v2_decode(b, n, &r)) != PROXY_E_NONE)
		return proxy_fail(p, e);
	*h = r;
	return PROXY_PARSE_DONE;
}

/* ---- entry ---------------------------------------------------------------- */

int
proxy_parse(struct proxy_parser *p, const void *buf, size_t len,
    struct proxy_hdr *h)
{
	const unsigned char	*b = buf;

	if (p->error != PROXY_E_NONE)
		return PROXY_PARSE_ERROR;
	if (p->version == 0) {
		if (len == 0)
			return PROXY_PARSE_AGAIN;
		/* 2.2's detection, decided at the first byte */
		if (b[0] == proxy_sig1[0])
			p->version = 1;
		else if (b[0] == proxy_sig2[0])
			p->version = 2;
		else
			return proxy_fail(p, PROXY_E_SIGNATURE);
	}
	return p->version == 1 ? proxy_v1(p, b, len, h) :
	    proxy_v2(p, b, len, h);
}
