/*
 * test_limit_key.c - client limits, the keys: IPv4-mapped addresses,
 * prefixes, CIDR lists, and agents with their own room under the
 * address-wide cap. Time is injected: no test reads a clock or sleeps.
 */
#include <sys/socket.h>

#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "limit_fx.h"

/* ---- keys ----------------------------------------------------------- */

Test(keys, ipv4_mapped_becomes_ipv4_before_masking)
{
	struct fx		 f;
	struct limit_key	 a, b, c;

	fx_default(&f);
	fx_start(&f);
	a = fx_key(&f, "::ffff:192.0.2.1", "curl");
	b = fx_key(&f, "::ffff:198.51.100.7", "curl");
	c = fx_key(&f, "192.0.2.1", "curl");
	cr_assert_eq(a.lk_net.lc_family, AF_INET);
	cr_assert_eq(a.lk_net.lc_prefix, 32);
	cr_assert_eq(memcmp(&a.lk_net, &c.lk_net, sizeof(a.lk_net)), 0);
	cr_assert_neq(memcmp(&a.lk_net, &b.lk_net, sizeof(a.lk_net)), 0);
	/* the trap: one mapped client's limit must not hit another */
	cr_assert_eq(fx_burst(&f, &a, LIMIT_COST_PAGE, 500, T0), 400);
	cr_assert_eq(fx_burst(&f, &b, LIMIT_COST_PAGE, 400, T0), 400);
	/* and the plain IPv4 form is the same client as its mapped form */
	cr_assert_eq(fx_burst(&f, &c, LIMIT_COST_PAGE, 1, T0), 0);
}

Test(keys, prefixes)
{
	struct fx		 f;
	struct limit_key	 k[4];

	fx_default(&f);
	f.p.ipv4_prefix = 24;
	fx_start(&f);
	k[0] = fx_key(&f, "192.0.2.1", NULL);
	k[1] = fx_key(&f, "192.0.2.200", NULL);
	k[2] = fx_key(&f, "192.0.3.1", NULL);
	cr_assert_eq(memcmp(&k[0].lk_net, &k[1].lk_net, sizeof(k[0].lk_net)),
	    0);
	cr_assert_neq(memcmp(&k[0].lk_net, &k[2].lk_net, sizeof(k[0].lk_net)),
	    0);
	cr_assert_neq(memcmp(&k[0].lk_host, &k[1].lk_host,
	    sizeof(k[0].lk_host)), 0);

	k[0] = fx_key(&f, "2001:db8:1:2::1", NULL);
	k[1] = fx_key(&f, "2001:db8:1:2:ffff:ffff:ffff:ffff", NULL);
	k[2] = fx_key(&f, "2001:db8:1:3::1", NULL);
	cr_assert_eq(k[0].lk_net.lc_prefix, 64);
	cr_assert_eq(memcmp(&k[0].lk_net, &k[1].lk_net, sizeof(k[0].lk_net)),
	    0);
	cr_assert_neq(memcmp(&k[0].lk_net, &k[2].lk_net, sizeof(k[0].lk_net)),
	    0);
	/* one /64 is one client for the buckets */
	cr_assert_eq(fx_burst(&f, &k[0], LIMIT_COST_PAGE, 300, T0), 300);
	cr_assert_eq(fx_burst(&f, &k[1], LIMIT_COST_PAGE, 300, T0), 100);
	cr_assert_eq(fx_burst(&f, &k[2], LIMIT_COST_PAGE, 300, T0), 300);

	f.p.ipv6_prefix = 48;
	fx_start(&f);
	k[3] = fx_key(&f, "2001:db8:1:ff00::1", NULL);
	k[2] = fx_key(&f, "2001:db8:1:3::1", NULL);
	cr_assert_eq(memcmp(&k[2].lk_net, &k[3].lk_net, sizeof(k[2].lk_net)),
	    0);
}

Test(keys, cidr_parse_and_match)
{
	struct limit_cidr	 n, a;

	cr_assert_eq(limit_cidr_parse("192.0.2.77/24", &n), 0);
	cr_assert_eq(n.lc_family, AF_INET);
	cr_assert_eq(n.lc_prefix, 24);
	cr_assert_eq(n.lc_addr[3], 0);		/* host bits cleared */
	cr_assert_eq(limit_cidr_parse("192.0.2.200", &a), 0);
	cr_assert(limit_cidr_match(&n, &a));
	cr_assert_eq(limit_cidr_parse("192.0.3.1", &a), 0);
	cr_assert(!limit_cidr_match(&n, &a));

	cr_assert_eq(limit_cidr_parse("0.0.0.0/0", &n), 0);
	cr_assert(limit_cidr_match(&n, &a));
	cr_assert_eq(limit_cidr_parse("::1", &a), 0);
	cr_assert(!limit_cidr_match(&n, &a));	/* /0 of IPv4 is not IPv6 */
	cr_assert_eq(limit_cidr_parse("::/0", &n), 0);
	cr_assert(limit_cidr_match(&n, &a));
	cr_assert_eq(limit_cidr_parse("::1/128", &n), 0);
	cr_assert(limit_cidr_match(&n, &a));
	cr_assert_eq(limit_cidr_parse("::2", &a), 0);
	cr_assert(!limit_cidr_match(&n, &a));
	cr_assert_eq(limit_cidr_parse("2001:db8::/32", &n), 0);
	cr_assert_eq(limit_cidr_parse("2001:db8:ffff::1", &a), 0);
	cr_assert(limit_cidr_match(&n, &a));

	/* a mapped network is an IPv4 one */
	cr_assert_eq(limit_cidr_parse("::ffff:10.0.0.0/104", &n), 0);
	cr_assert_eq(n.lc_family, AF_INET);
	cr_assert_eq(n.lc_prefix, 8);

	cr_assert_eq(limit_cidr_parse("192.0.2.1/33", &n), -1);
	cr_assert_eq(limit_cidr_parse("::/129", &n), -1);
	cr_assert_eq(limit_cidr_parse("192.0.2.1/", &n), -1);
	cr_assert_eq(limit_cidr_parse("192.0.2.1/-1", &n), -1);
	cr_assert_eq(limit_cidr_parse("192.0.2.1/8x", &n), -1);
	cr_assert_eq(limit_cidr_parse("example.org", &n), -1);
	cr_assert_eq(limit_cidr_parse("", &n), -1);
}

Test(keys, agents_get_their_own_room)
{
	struct fx		 f;
	struct limit_key	 a, b;

	fx_default(&f);
	fx_start(&f);
	a = fx_key(&f, "192.0.2.1", "Firefox");
	b = fx_key(&f, "192.0.2.1", "Chrome");
	cr_assert_eq(fx_burst(&f, &a, LIMIT_COST_PAGE, 500, T0), 400);
	cr_assert_eq(fx_burst(&f, &b, LIMIT_COST_PAGE, 500, T0), 400);

	/* without the split, one address is one key */
	fx_default(&f);
	f.p.split_by_agent = 0;
	fx_start(&f);
	a = fx_key(&f, "192.0.2.1", "Firefox");
	b = fx_key(&f, "192.0.2.1", "Chrome");
	cr_assert_eq(fx_burst(&f, &a, LIMIT_COST_PAGE, 300, T0), 300);
	cr_assert_eq(fx_burst(&f, &b, LIMIT_COST_PAGE, 300, T0), 100);
}

/* Rotating agents: every new agent has a full fine bucket; the sum is
 * capped by the address-wide bucket all the same. */
static int
rotate_agents(struct fx *f, int agents)
{
	struct limit_key	 k;
	char			 ua[32];
	int			 i, ok = 0;

	for (i = 0; i < agents; i++) {
		snprintf(ua, sizeof(ua), "bot/%d", i);
		k = fx_key(f, "192.0.2.9", ua);
		ok += fx_burst(f, &k, LIMIT_COST_PAGE, 400, T0);
	}
	return ok;
}

Test(keys, aggregate_caps_the_sum_over_agents)
{
	struct fx		 f;
	struct limit_cidr	 sh;
	int			 got;

	fx_default(&f);
	f.p.auto_shared = 0;
	fx_start(&f);
	cr_assert_eq(rotate_agents(&f, 100), 1600);	/* 400 x 4 */

	/*
	 * Auto-shared gives the address room x 4 once more, still a cap:
	 * the agents seen before it counts as shared spend at the lower
	 * level, so the sum lies between the two, and more agents add
	 * nothing.
	 */
	fx_default(&f);
	fx_start(&f);
	got = rotate_agents(&f, 100);
	cr_assert(got >= 1600 && got <= 6400, "%d", got);
	fx_default(&f);
	fx_start(&f);
	cr_assert_eq(rotate_agents(&f, 1000), got);

	/* listed as shared from the start: exactly 400 x 4 x 4 */
	fx_default(&f);
	cr_assert_eq(limit_cidr_parse("192.0.2.0/24", &sh), 0);
	f.p.shared = &sh;
	f.p.nshared = 1;
	fx_start(&f);
	cr_assert_eq(rotate_agents(&f, 100), 6400);
}
