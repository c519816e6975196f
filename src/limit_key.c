/*
 * limit_key.c - who a client is, for the limits behind limit.h: its
 * address after IPv4-mapped normalisation, masked to the configured
 * prefix; CIDR lists (allow, shared); the keyed User-Agent hash; and
 * the stored form of a key with the keyed hash that picks its buckets
 * (SipHash-2-4 under the region's secret seed, so nobody can aim
 * collisions at one bucket).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "limit_int.h"

/* ---- SipHash-2-4 (Aumasson, Bernstein), for keyed bucket choice ------ */

#define ROTL(x, b)	(uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND do {							\
	v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);	\
	v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;				\
	v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;				\
	v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);	\
} while (0)

uint64_t
limit_siphash(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
	const uint8_t	*p = data;
	uint64_t	 v0 = 0x736f6d6570736575ULL ^ k0;
	uint64_t	 v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t	 v2 = 0x6c7967656e657261ULL ^ k0;
	uint64_t	 v3 = 0x7465646279746573ULL ^ k1;
	uint64_t	 m, b = (uint64_t)len << 56;
	size_t		 i, left = len & 7;

	for (; len >= 8; len -= 8, p += 8) {
		for (m = 0, i = 0; i < 8; i++)
			m |= (uint64_t)p[i] << (8 * i);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (i = 0; i < left; i++)
		b |= (uint64_t)p[i] << (8 * i);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- addresses and keys ---------------------------------------------- */

static void
limit_mask(uint8_t *addr, int bits, int prefix)
{
	int	 i;

	for (i = 0; i < bits / 8; i++) {
		if (prefix >= 8)
			prefix -= 8;
		else {
			addr[i] &= (uint8_t)(0xff00 >> prefix);
			prefix = 0;
		}
	}
}

int
limit_cidr_parse(const char *s, struct limit_cidr *out)
{
	char		 buf[64], *slash, *end;
	long		 len = -1;
	uint8_t		 a6[16];
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	if ((slash = strchr(buf, '/')) != NULL) {
		*slash++ = '\0';
		if (*slash < '0' || *slash > '9')
			return -1;
		errno = 0;
		len = strtol(slash, &end, 10);
		if (*end != '\0' || errno != 0)
			return -1;
	}
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, out->lc_addr) == 1) {
		if (len > 32)
			return -1;
		out->lc_family = AF_INET;
		out->lc_prefix = (uint8_t)(len < 0 ? 32 : len);
	} else if (inet_pton(AF_INET6, buf, a6) == 1) {
		if (len > 128)
			return -1;
		if (len < 0)
			len = 128;
		if (memcmp(a6, mapped, 12) == 0 && len >= 96) {
			memcpy(out->lc_addr, a6 + 12, 4);
			out->lc_family = AF_INET;
			out->lc_prefix = (uint8_t)(len - 96);
		} else {
			memcpy(out->lc_addr, a6, 16);
			out->lc_family = AF_INET6;
			out->lc_prefix = (uint8_t)len;
		}
	} else
		return -1;
	limit_mask(out->lc_addr, out->lc_family == AF_INET ? 32 : 128,
	    out->lc_prefix);
	return 0;
}

int
limit_cidr_match(const struct limit_cidr *net, const struct limit_cidr *a)
{
	uint8_t	 m[16];

	if (net->lc_family != a->lc_family)
		return 0;
	memcpy(m, a->lc_addr, 16);
	limit_mask(m, a->lc_family == AF_INET ? 32 : 128, net->lc_prefix);
	return memcmp(m, net->lc_addr, 16) == 0;
}

int
limit_cidr_any(const struct limit_cidr *list, size_t n,
    const struct limit_cidr *a)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (limit_cidr_match(&list[i], a))
			return 1;
	return 0;
}

int
limit_key_from_sockaddr(const struct limit_params *p,
    const struct sockaddr *sa, socklen_t salen, uint64_t agent_hash,
    struct limit_key *out)
{
	const struct sockaddr_in	*s4 = (const void *)sa;
	const struct sockaddr_in6	*s6 = (const void *)sa;
	struct limit_cidr		*h = &out->lk_host;

	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET && salen >= sizeof(*s4)) {
		memcpy(h->lc_addr, &s4->sin_addr, 4);
		h->lc_family = AF_INET;
	} else if (sa->sa_family == AF_INET6 && salen >= sizeof(*s6)) {
		/* Mapped first: a /64 of ::ffff:a.b.c.d is all of IPv4. */
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			memcpy(h->lc_addr, s6->sin6_addr.s6_addr + 12, 4);
			h->lc_family = AF_INET;
		} else {
			memcpy(h->lc_addr, s6->sin6_addr.s6_addr, 16);
			h->lc_family = AF_INET6;
		}
	} else
		return -1;
	h->lc_prefix = h->lc_family == AF_INET ? 32 : 128;
	out->lk_net = *h;
	out->lk_net.lc_prefix = (uint8_t)(h->lc_family == AF_INET ?
	    p->ipv4_prefix : p->ipv6_prefix);
	limit_mask(out->lk_net.lc_addr, h->lc_family == AF_INET ? 32 : 128,
	    out->lk_net.lc_prefix);
	out->lk_agent = agent_hash;
	return 0;
}

uint64_t
limit_agent_hash(const struct limit *l, const char *ua, size_t len)
{
	/* Another key than the buckets' so the two hashes are unrelated. */
	return limit_siphash(l->l_shm->ls_k0 ^ 0x5541, l->l_shm->ls_k1,
	    ua != NULL ? ua : "", ua != NULL ? len : 0);
}

void
limit_ekey(const struct limit_params *p, const struct limit_key *k,
    int agg, struct limit_ekey *ek)
{
	memset(ek, 0, sizeof(*ek));
	memcpy(ek->addr, k->lk_net.lc_addr, 16);
	ek->prefix = k->lk_net.lc_prefix;
	ek->flags = LF_USED | (k->lk_net.lc_family == AF_INET6 ? LF_V6 : 0) |
	    (agg ? LF_AGG : 0);
	ek->agent = agg || !p->split_by_agent ? 0 : k->lk_agent;
}

uint64_t
limit_ekey_hash(const struct limit_shm *s, const struct limit_ekey *ek)
{
	uint8_t	 b[26];

	memcpy(b, ek->addr, 16);
	memcpy(b + 16, &ek->agent, 8);
	b[24] = ek->prefix;
	b[25] = ek->flags;
	return limit_siphash(s->ls_k0, s->ls_k1, b, sizeof(b));
}
