/*
 * test_limit.c - client limits: GCRA, keys, shared addresses, the ban
 * ladder and its evidence, eviction, lock and ledger repair after a
 * dead worker, and a classroom behind one NAT address with a scraper
 * next door. Time is injected: no test reads a clock or sleeps.
 *
 * limit.c is included so the repair tests can take a lock word the way
 * a worker does and die holding it.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../../src/limit.c"

#define T0	1000000ULL	/* ms: an arbitrary monotonic start */

struct fx {
	void			*mem;
	size_t			 len;
	struct limit_geometry	 g;
	struct limit_params	 p;
	struct limit		 l;
};

static const uint8_t SEED[16] = "0123456789abcdef";

/* A shared anonymous mapping, as the master will make before forking. */
static void
fx_open(struct fx *f, uint32_t table, uint32_t bans, uint32_t slots,
    uint32_t ledger)
{
	f->g.lg_table_size = table;
	f->g.lg_ban_table_size = bans;
	f->g.lg_slots = slots;
	f->g.lg_ledger_size = ledger;
	f->len = limit_size(&f->g);
	cr_assert_gt(f->len, 0);
	f->mem = mmap(NULL, f->len, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(f->mem, MAP_FAILED);
	cr_assert_eq(limit_init(f->mem, f->len, &f->g, SEED, T0), 0);
}

/* Defaults, enforce, then attach as this process. */
static void
fx_start(struct fx *f)
{
	char	 err[128];

	cr_assert_eq(limit_params_prepare(&f->p, err, sizeof(err)), 0, "%s",
	    err);
	cr_assert_eq(limit_attach(&f->l, f->mem, f->len, &f->p, getpid()), 0);
}

static void
fx_default(struct fx *f)
{
	fx_open(f, 1024, 256, 4, 64);
	limit_params_default(&f->p);
	f->p.mode = LIMIT_ENFORCE;
}

static struct limit_key
key(struct fx *f, const char *addr, const char *ua)
{
	struct sockaddr_in	 s4;
	struct sockaddr_in6	 s6;
	struct limit_key	 k;
	uint64_t		 h = ua ? limit_agent_hash(&f->l, ua, strlen(ua)) : 0;

	memset(&s4, 0, sizeof(s4));
	memset(&s6, 0, sizeof(s6));
	if (inet_pton(AF_INET, addr, &s4.sin_addr) == 1) {
		s4.sin_family = AF_INET;
		cr_assert_eq(limit_key_from_sockaddr(&f->p,
		    (struct sockaddr *)&s4, sizeof(s4), h, &k), 0);
	} else {
		cr_assert_eq(inet_pton(AF_INET6, addr, &s6.sin6_addr), 1, "%s",
		    addr);
		s6.sin6_family = AF_INET6;
		cr_assert_eq(limit_key_from_sockaddr(&f->p,
		    (struct sockaddr *)&s6, sizeof(s6), h, &k), 0);
	}
	return k;
}

/* n requests of cost c at time t; returns how many passed. */
static int
burst(struct fx *f, const struct limit_key *k, enum limit_cost c, int n,
    uint64_t t)
{
	struct limit_result	 r;
	int			 i, ok = 0;

	for (i = 0; i < n; i++) {
		limit_check(&f->l, k, c, t, &r);
		ok += !r.block;
	}
	return ok;
}

/* A request and its status, as the wired server will do it. */
static void
request(struct fx *f, const struct limit_key *k, enum limit_cost c,
    const char *path, int status, uint64_t t, struct limit_result *r)
{
	limit_check(&f->l, k, c, t, r);
	if (!r->block)
		limit_finish(&f->l, k, status, c, path, strlen(path), t, r);
}

/* Distinct 404s on pages at t until a ban starts; returns its length. */
static uint32_t
probe_until_ban(struct fx *f, const struct limit_key *k, uint64_t t)
{
	struct limit_result	 r;
	char			 path[64];
	static int		 serial;	/* every path is new */
	int			 i;

	for (i = 0; i < 1000; i++) {
		snprintf(path, sizeof(path), "/wp-admin/%d.php", serial++);
		request(f, k, LIMIT_COST_PAGE, path, 404, t, &r);
		cr_assert_neq(r.verdict, LIMIT_BANNED, "banned before");
		if (r.banned_now) {
			cr_assert_eq(r.cause, LIMIT_C_PROBE);
			cr_assert_eq(i + 1, (int)f->p.probe_points);
			return r.ban_seconds;
		}
	}
	cr_assert_fail("no ban after 1000 distinct 404s");
	return 0;
}

/* ---- GCRA ----------------------------------------------------------- */

Test(gcra, exactly_burst_at_once)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;

	fx_default(&f);
	fx_start(&f);
	k = key(&f, "192.0.2.1", "curl");
	cr_assert_eq(burst(&f, &k, LIMIT_COST_PAGE, 400, T0), 400);
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0, &r);
	cr_assert_eq(r.verdict, LIMIT_RATE);
	cr_assert_eq(r.block, 1);
	cr_assert_eq(r.retry_after, 1);	/* 50 ms, rounded up */
}

Test(gcra, refills_at_rate)
{
	struct fx		 f;
	struct limit_key	 k;

	fx_default(&f);
	fx_start(&f);
	k = key(&f, "192.0.2.1", "curl");
	cr_assert_eq(burst(&f, &k, LIMIT_COST_PAGE, 401, T0), 400);
	/* one page every 50 ms at 20/s */
	cr_assert_eq(burst(&f, &k, LIMIT_COST_PAGE, 5, T0 + 49), 0);
	cr_assert_eq(burst(&f, &k, LIMIT_COST_PAGE, 5, T0 + 50), 1);
	cr_assert_eq(burst(&f, &k, LIMIT_COST_PAGE, 50, T0 + 1050), 20);
	/* idle long enough: the whole burst again, not more */
	cr_assert_eq(burst(&f, &k, LIMIT_COST_PAGE, 500, T0 + 60000), 400);
}

Test(gcra, retry_after_rounds_up_at_least_one)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;

	fx_default(&f);
	f.p.rate = 0.5;		/* one page per 2 s */
	f.p.burst = 1;
	fx_start(&f);
	k = key(&f, "192.0.2.1", "curl");
	cr_assert_eq(burst(&f, &k, LIMIT_COST_PAGE, 1, T0), 1);
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0, &r);
	cr_assert_eq(r.retry_after, 2);
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 1, &r);
	cr_assert_eq(r.retry_after, 2);		/* 1.999 s */
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 1000, &r);
	cr_assert_eq(r.retry_after, 1);		/* exactly 1 s */
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 1001, &r);
	cr_assert_eq(r.retry_after, 1);		/* 0.999 s */
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 1999, &r);
	cr_assert_eq(r.verdict, LIMIT_RATE);
	cr_assert_eq(r.retry_after, 1);		/* 1 ms still says 1 */
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 2000, &r);
	cr_assert_eq(r.verdict, LIMIT_PASS);
}

Test(gcra, refused_request_does_not_advance)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;
	uint64_t		 t;

	fx_default(&f);
	f.p.rate = 1;
	f.p.burst = 1;
	fx_start(&f);
	k = key(&f, "192.0.2.1", "curl");
	cr_assert_eq(burst(&f, &k, LIMIT_COST_PAGE, 1, T0), 1);
	for (t = T0; t < T0 + 1000; t += 10) {
		limit_check(&f.l, &k, LIMIT_COST_PAGE, t, &r);
		cr_assert_eq(r.verdict, LIMIT_RATE);
		/* always the time left to T0 + 1000, never pushed out */
		cr_assert_eq(r.retry_after, 1);
	}
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 1000, &r);
	cr_assert_eq(r.verdict, LIMIT_PASS);
}

Test(gcra, asset_and_page_costs)
{
	struct fx		 f;
	struct limit_key	 k, k2;

	fx_default(&f);
	f.p.burst = 10;
	fx_start(&f);
	k = key(&f, "192.0.2.1", "curl");
	cr_assert_eq(burst(&f, &k, LIMIT_COST_ASSET, 50, T0), 40);
	k2 = key(&f, "192.0.2.2", "curl");
	cr_assert_eq(burst(&f, &k2, LIMIT_COST_PAGE, 1, T0), 1);
	cr_assert_eq(burst(&f, &k2, LIMIT_COST_ASSET, 50, T0), 36);
	cr_assert_eq(burst(&f, &k2, LIMIT_COST_PAGE, 1, T0), 0);
}

Test(gcra, asset_weight_is_a_parameter)
{
	struct fx		 f;
	struct limit_key	 k;

	fx_default(&f);
	f.p.burst = 10;
	f.p.asset_weight = 0.5;
	fx_start(&f);
	k = key(&f, "192.0.2.1", "curl");
	cr_assert_eq(burst(&f, &k, LIMIT_COST_ASSET, 50, T0), 20);
}

Test(gcra, mime_types_that_are_assets)
{
	static const char *yes[] = { "text/css", "text/css; charset=utf-8",
	    "image/png", "image/svg+xml", "font/woff2", "video/mp4",
	    "application/javascript", "TEXT/JAVASCRIPT", "audio/ogg",
	    "application/font-woff", "application/wasm" };
	static const char *no[] = { "text/html", "text/html; charset=utf-8",
	    "text/plain", "application/json", "application/pdf",
	    "text/cssx", "application/javascriptx", "" };
	size_t	 i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		cr_assert(limit_mime_is_asset(yes[i], strlen(yes[i])), "%s",
		    yes[i]);
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		cr_assert(!limit_mime_is_asset(no[i], strlen(no[i])), "%s",
		    no[i]);
}

/* ---- keys ----------------------------------------------------------- */

Test(keys, ipv4_mapped_becomes_ipv4_before_masking)
{
	struct fx		 f;
	struct limit_key	 a, b, c;

	fx_default(&f);
	fx_start(&f);
	a = key(&f, "::ffff:192.0.2.1", "curl");
	b = key(&f, "::ffff:198.51.100.7", "curl");
	c = key(&f, "192.0.2.1", "curl");
	cr_assert_eq(a.lk_net.lc_family, AF_INET);
	cr_assert_eq(a.lk_net.lc_prefix, 32);
	cr_assert_eq(memcmp(&a.lk_net, &c.lk_net, sizeof(a.lk_net)), 0);
	cr_assert_neq(memcmp(&a.lk_net, &b.lk_net, sizeof(a.lk_net)), 0);
	/* the trap: one mapped client's limit must not hit another */
	cr_assert_eq(burst(&f, &a, LIMIT_COST_PAGE, 500, T0), 400);
	cr_assert_eq(burst(&f, &b, LIMIT_COST_PAGE, 400, T0), 400);
	/* and the plain IPv4 form is the same client as its mapped form */
	cr_assert_eq(burst(&f, &c, LIMIT_COST_PAGE, 1, T0), 0);
}

Test(keys, prefixes)
{
	struct fx		 f;
	struct limit_key	 k[4];

	fx_default(&f);
	f.p.ipv4_prefix = 24;
	fx_start(&f);
	k[0] = key(&f, "192.0.2.1", NULL);
	k[1] = key(&f, "192.0.2.200", NULL);
	k[2] = key(&f, "192.0.3.1", NULL);
	cr_assert_eq(memcmp(&k[0].lk_net, &k[1].lk_net, sizeof(k[0].lk_net)),
	    0);
	cr_assert_neq(memcmp(&k[0].lk_net, &k[2].lk_net, sizeof(k[0].lk_net)),
	    0);
	cr_assert_neq(memcmp(&k[0].lk_host, &k[1].lk_host,
	    sizeof(k[0].lk_host)), 0);

	k[0] = key(&f, "2001:db8:1:2::1", NULL);
	k[1] = key(&f, "2001:db8:1:2:ffff:ffff:ffff:ffff", NULL);
	k[2] = key(&f, "2001:db8:1:3::1", NULL);
	cr_assert_eq(k[0].lk_net.lc_prefix, 64);
	cr_assert_eq(memcmp(&k[0].lk_net, &k[1].lk_net, sizeof(k[0].lk_net)),
	    0);
	cr_assert_neq(memcmp(&k[0].lk_net, &k[2].lk_net, sizeof(k[0].lk_net)),
	    0);
	/* one /64 is one client for the buckets */
	cr_assert_eq(burst(&f, &k[0], LIMIT_COST_PAGE, 300, T0), 300);
	cr_assert_eq(burst(&f, &k[1], LIMIT_COST_PAGE, 300, T0), 100);
	cr_assert_eq(burst(&f, &k[2], LIMIT_COST_PAGE, 300, T0), 300);

	f.p.ipv6_prefix = 48;
	fx_start(&f);
	k[3] = key(&f, "2001:db8:1:ff00::1", NULL);
	k[2] = key(&f, "2001:db8:1:3::1", NULL);
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
	a = key(&f, "192.0.2.1", "Firefox");
	b = key(&f, "192.0.2.1", "Chrome");
	cr_assert_eq(burst(&f, &a, LIMIT_COST_PAGE, 500, T0), 400);
	cr_assert_eq(burst(&f, &b, LIMIT_COST_PAGE, 500, T0), 400);

	/* without the split, one address is one key */
	fx_default(&f);
	f.p.split_by_agent = 0;
	fx_start(&f);
	a = key(&f, "192.0.2.1", "Firefox");
	b = key(&f, "192.0.2.1", "Chrome");
	cr_assert_eq(burst(&f, &a, LIMIT_COST_PAGE, 300, T0), 300);
	cr_assert_eq(burst(&f, &b, LIMIT_COST_PAGE, 300, T0), 100);
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
		k = key(f, "192.0.2.9", ua);
		ok += burst(f, &k, LIMIT_COST_PAGE, 400, T0);
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

/* ---- shared, allow -------------------------------------------------- */

Test(shared, detected_from_distinct_agents)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;
	struct limit_stats	 st;
	static const char	*ua[] = { "a", "b", "c", "d" };
	int			 i;

	fx_default(&f);
	fx_start(&f);
	for (i = 0; i < 4; i++) {
		k = key(&f, "192.0.2.1", ua[i]);
		limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + i * 100000ULL, &r);
		cr_assert_eq(r.shared, i == 3, "agent %d", i);
	}
	limit_stats(&f.l, T0, &st);
	cr_assert_eq(st.shared_keys, 1);

	/* the same agent over and over is one agent */
	k = key(&f, "192.0.2.2", "a");
	for (i = 0; i < 100; i++)
		limit_check(&f.l, &k, LIMIT_COST_PAGE, T0, &r);
	cr_assert_eq(r.shared, 0);

	/* still counted in the next window, forgotten after two */
	k = key(&f, "192.0.2.1", "a");
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 1000 * 1000, &r);
	cr_assert_eq(r.shared, 1);
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 1800 * 1000, &r);
	cr_assert_eq(r.shared, 0);

	/* off: never shared by agents */
	fx_default(&f);
	f.p.auto_shared = 0;
	fx_start(&f);
	for (i = 0; i < 4; i++) {
		k = key(&f, "192.0.2.1", ua[i]);
		limit_check(&f.l, &k, LIMIT_COST_PAGE, T0, &r);
		cr_assert_eq(r.shared, 0);
	}
}

Test(shared, listed_and_allowed)
{
	struct fx		 f;
	struct limit_cidr	 sh[1], al[2];
	struct limit_key	 k;
	struct limit_result	 r;

	fx_default(&f);
	cr_assert_eq(limit_cidr_parse("198.51.100.0/24", &sh[0]), 0);
	cr_assert_eq(limit_cidr_parse("203.0.113.5", &al[0]), 0);
	cr_assert_eq(limit_cidr_parse("2001:db8::/32", &al[1]), 0);
	f.p.shared = sh;
	f.p.nshared = 1;
	f.p.allow = al;
	f.p.nallow = 2;
	fx_start(&f);

	k = key(&f, "198.51.100.20", "one agent");
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0, &r);
	cr_assert_eq(r.shared, 1);

	k = key(&f, "203.0.113.5", "monitor");
	cr_assert_eq(burst(&f, &k, LIMIT_COST_PAGE, 10000, T0), 10000);
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0, &r);
	cr_assert_eq(r.verdict, LIMIT_UNTRACKED);
	k = key(&f, "::ffff:203.0.113.5", "monitor");	/* mapped form too */
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0, &r);
	cr_assert_eq(r.verdict, LIMIT_UNTRACKED);
	k = key(&f, "2001:db8:9::1", "monitor");
	cr_assert_eq(burst(&f, &k, LIMIT_COST_PAGE, 10000, T0), 10000);
	/* the neighbour is limited */
	k = key(&f, "203.0.113.6", "monitor");
	cr_assert_eq(burst(&f, &k, LIMIT_COST_PAGE, 10000, T0), 400);
}

/* ---- modes ---------------------------------------------------------- */

/* n distinct 404s on pages at t, whatever comes of them */
static void
probes(struct fx *f, const struct limit_key *k, int n, uint64_t t)
{
	struct limit_result	 r;
	char			 path[64];
	static int		 serial;
	int			 i;

	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "/cgi-bin/%d", serial++);
		request(f, k, LIMIT_COST_PAGE, path, 404, t, &r);
	}
}

Test(modes, dry_run_decides_counts_never_blocks)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;
	struct limit_stats	 st;
	struct limit_info	 in;

	fx_default(&f);
	f.p.mode = LIMIT_DRY_RUN;
	fx_start(&f);
	k = key(&f, "192.0.2.1", "curl");
	cr_assert_eq(burst(&f, &k, LIMIT_COST_PAGE, 450, T0), 450);
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0, &r);
	cr_assert_eq(r.verdict, LIMIT_RATE);
	cr_assert_eq(r.block, 0);
	cr_assert_geq(r.retry_after, 1);
	limit_stats(&f.l, T0, &st);
	cr_assert_eq(st.rejected[LIMIT_R_RATE][1], 51);
	cr_assert_eq(st.rejected[LIMIT_R_RATE][0], 0);

	/* a dry-run ban is recorded and reported, and still blocks nothing */
	k = key(&f, "192.0.2.2", "scanner");
	probe_until_ban(&f, &k, T0);
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 1000, &r);
	cr_assert_eq(r.verdict, LIMIT_BANNED);
	cr_assert_eq(r.block, 0);
	limit_stats(&f.l, T0, &st);
	cr_assert_eq(st.rejected[LIMIT_R_BAN][1], 1);
	cr_assert_eq(st.bans[LIMIT_C_PROBE], 1);

	/* served while "banned", it earns no second ban: enforce would
	 * never have seen those statuses */
	probes(&f, &k, 100, T0 + 2000);
	limit_stats(&f.l, T0, &st);
	cr_assert_eq(st.bans[LIMIT_C_PROBE], 1);
	limit_info(&f.l, &k, 0, T0 + 2000, &in);
	cr_assert_eq(in.ban_left, 598);

	/* nor does evidence shorten or take over an admin's ban */
	k = key(&f, "192.0.2.3", "scanner");
	cr_assert_eq(limit_ban(&f.l, &k, 7200, T0), 0);
	probes(&f, &k, 100, T0);
	limit_info(&f.l, &k, 0, T0, &in);
	cr_assert_eq(in.ban_left, 7200);
	limit_stats(&f.l, T0, &st);
	cr_assert_eq(st.bans[LIMIT_C_PROBE], 1);
}

Test(modes, off_touches_nothing)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;
	struct limit_stats	 st;

	fx_default(&f);
	f.p.mode = LIMIT_OFF;
	fx_start(&f);
	k = key(&f, "192.0.2.1", "curl");
	cr_assert_eq(burst(&f, &k, LIMIT_COST_PAGE, 1000, T0), 1000);
	limit_finish(&f.l, &k, 404, LIMIT_COST_PAGE, "/x", 2, T0, &r);
	cr_assert_eq(limit_conn_open(&f.l, &k, T0, 0, 0, &r), 0);
	limit_stats(&f.l, T0, &st);
	cr_assert_eq(st.entries, 0);
	cr_assert_eq(st.rejected[LIMIT_R_RATE][0] + st.rejected[LIMIT_R_RATE][1],
	    0);
}

/* ---- bans ----------------------------------------------------------- */

Test(bans, ladder_doubles_up_to_the_cap)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;
	static const uint32_t	 want[] = { 600, 1200, 2400, 4800, 9600,
	    14400, 14400 };
	uint64_t		 t = T0;
	size_t			 i;

	fx_default(&f);
	fx_start(&f);
	k = key(&f, "192.0.2.1", "scanner");
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		cr_assert_eq(probe_until_ban(&f, &k, t), want[i], "ban %zu", i);
		limit_check(&f.l, &k, LIMIT_COST_PAGE, t + 1, &r);
		cr_assert_eq(r.verdict, LIMIT_BANNED);
		cr_assert_eq(r.retry_after, want[i]);
		/* the last second of it, then free */
		limit_check(&f.l, &k, LIMIT_COST_PAGE,
		    t + want[i] * 1000ULL - 1, &r);
		cr_assert_eq(r.verdict, LIMIT_BANNED);
		t += want[i] * 1000ULL + 1000;
		limit_check(&f.l, &k, LIMIT_COST_PAGE, t, &r);
		cr_assert_eq(r.verdict, LIMIT_PASS, "ban %zu expires", i);
	}
	/* a day without a ban: the ladder starts again */
	t += 86400ULL * 1000;
	cr_assert_eq(probe_until_ban(&f, &k, t), 600);
}

Test(bans, shared_addresses_get_short_bans)
{
	struct fx		 f;
	struct limit_cidr	 sh;
	struct limit_key	 k;
	uint64_t		 t = T0;

	fx_default(&f);
	cr_assert_eq(limit_cidr_parse("192.0.2.0/24", &sh), 0);
	f.p.shared = &sh;
	f.p.nshared = 1;
	fx_start(&f);
	k = key(&f, "192.0.2.1", "scanner");
	cr_assert_eq(probe_until_ban(&f, &k, t), 600);
	t += 601 * 1000;
	cr_assert_eq(probe_until_ban(&f, &k, t), 900);
	t += 901 * 1000;
	cr_assert_eq(probe_until_ban(&f, &k, t), 900);
}

Test(bans, probes_count_only_distinct_paths)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;
	char			 path[32];
	int			 i;

	fx_default(&f);
	fx_start(&f);
	k = key(&f, "192.0.2.1", "browser");
	/* a missing favicon asked for again and again never bans */
	for (i = 0; i < 1000; i++) {
		request(&f, &k, LIMIT_COST_PAGE, "/favicon.ico", 404,
		    T0 + i * 100ULL, &r);
		cr_assert_eq(r.banned_now, 0);
	}
	/* nor do four missing pages in turn */
	for (i = 0; i < 1000; i++) {
		snprintf(path, sizeof(path), "/old/%d.html", i % 4);
		request(&f, &k, LIMIT_COST_PAGE, path, 404, T0 + i * 100ULL, &r);
		cr_assert_eq(r.banned_now, 0);
	}
	/* missing assets, and 200s or 500s, earn nothing */
	for (i = 0; i < 200; i++) {
		snprintf(path, sizeof(path), "/img/%d.png", i);
		request(&f, &k, LIMIT_COST_ASSET, path, 404, T0 + 200000, &r);
		snprintf(path, sizeof(path), "/page/%d", i);
		request(&f, &k, LIMIT_COST_PAGE, path, i % 2 ? 200 : 500,
		    T0 + 200000, &r);
		cr_assert_eq(r.banned_now, 0);
	}
	/* 29 distinct, leaked away over the window, 29 more: no ban */
	k = key(&f, "192.0.2.2", "scanner");
	for (i = 0; i < 29; i++) {
		snprintf(path, sizeof(path), "/a/%d", i);
		request(&f, &k, LIMIT_COST_PAGE, path, 403, T0, &r);
		cr_assert_eq(r.banned_now, 0);
	}
	for (i = 0; i < 29; i++) {
		snprintf(path, sizeof(path), "/b/%d", i);
		request(&f, &k, LIMIT_COST_PAGE, path, 400, T0 + 300000, &r);
		cr_assert_eq(r.banned_now, 0);
	}
	/* and the 30th within the window bans the agent, not the address */
	request(&f, &k, LIMIT_COST_PAGE, "/c", 404, T0 + 300000, &r);
	cr_assert_eq(r.banned_now, 1);
	cr_assert_eq(r.ban_aggregate, 0);
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 300001, &r);
	cr_assert_eq(r.verdict, LIMIT_BANNED);
	k = key(&f, "192.0.2.2", "browser");
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 300001, &r);
	cr_assert_eq(r.verdict, LIMIT_PASS);
}

Test(bans, probes_over_many_agents_ban_the_address)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;
	char			 path[32], ua[32];
	int			 i, agg = 0;

	fx_default(&f);
	fx_start(&f);
	/* 20 points per agent, never a fine ban; 120 for the address */
	for (i = 0; i < 200 && !agg; i++) {
		snprintf(ua, sizeof(ua), "rot/%d", i / 20);
		snprintf(path, sizeof(path), "/p/%d", i);
		k = key(&f, "192.0.2.1", ua);
		request(&f, &k, LIMIT_COST_PAGE, path, 404, T0, &r);
		if (r.banned_now) {
			cr_assert_eq(r.ban_aggregate, 1);
			agg = i + 1;
		}
	}
	cr_assert_eq(agg, 120);
	k = key(&f, "192.0.2.1", "never seen");
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 1, &r);
	cr_assert_eq(r.verdict, LIMIT_BANNED);
	cr_assert_eq(limit_conn_open(&f.l, &k, T0 + 1, 0, 0, &r), 0);
	cr_assert_eq(r.verdict, LIMIT_BANNED);
	cr_assert_eq(r.block, 1);
}

Test(bans, ignoring_429_for_ignore_seconds)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;
	uint64_t		 t, first = 0;

	fx_default(&f);
	fx_start(&f);
	k = key(&f, "192.0.2.1", "hammer");
	/* 100 requests a second: 20 of them pass, the rest are told to
	 * wait; the passing ones do not make it a new start */
	for (t = T0; t < T0 + 300000; t += 10) {
		limit_check(&f.l, &k, LIMIT_COST_PAGE, t, &r);
		if (r.verdict == LIMIT_RATE && first == 0)
			first = t;
		if (r.banned_now)
			break;
	}
	cr_assert_eq(r.banned_now, 1);
	cr_assert_eq(r.cause, LIMIT_C_IGNORED);
	cr_assert_eq(r.ban_aggregate, 0);
	cr_assert_eq(r.ban_seconds, 600);
	cr_assert_geq(t - first, 120000);
	cr_assert_lt(t - first, 122000);
}

Test(bans, a_browser_that_waits_is_never_banned)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;
	uint64_t		 t = T0;
	int			 refused = 0;

	fx_default(&f);
	f.p.burst = 40;
	fx_start(&f);
	k = key(&f, "192.0.2.1", "browser");
	/* bursts of 60 assets in 2 s, told to wait, waits, again: 30 min */
	while (t < T0 + 1800000) {
		limit_check(&f.l, &k, LIMIT_COST_PAGE, t, &r);
		cr_assert_eq(r.banned_now, 0);
		cr_assert_neq(r.verdict, LIMIT_BANNED);
		if (r.verdict == LIMIT_RATE) {
			refused++;
			t += r.retry_after * 1000ULL;
		} else
			t += 33;
	}
	cr_assert_gt(refused, 100);
}

Test(bans, manual_ban_and_unban)
{
	struct fx		 f;
	struct limit_key	 k, k2, other, addr;
	struct limit_result	 r;
	struct limit_info	 in;
	struct limit_stats	 st;

	fx_default(&f);
	fx_start(&f);
	addr = key(&f, "192.0.2.1", NULL);
	k = key(&f, "192.0.2.1", "curl");
	cr_assert_eq(limit_ban(&f.l, &addr, 5, T0), 0);
	cr_assert_eq(limit_conn_open(&f.l, &k, T0, 0, 0, &r), 0);
	cr_assert_eq(r.verdict, LIMIT_BANNED);
	cr_assert_eq(r.retry_after, 5);
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 4999, &r);
	cr_assert_eq(r.verdict, LIMIT_BANNED);
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 5000, &r);
	cr_assert_eq(r.verdict, LIMIT_PASS);

	cr_assert_eq(limit_ban(&f.l, &addr, 3600, T0 + 6000), 0);
	limit_info(&f.l, &addr, 1, T0 + 6000, &in);
	cr_assert_eq(in.ban_left, 3600);
	cr_assert_eq(in.ban_count, 2);
	limit_stats(&f.l, T0 + 6000, &st);
	cr_assert_eq(st.bans_active, 1);
	cr_assert_eq(st.bans[LIMIT_C_MANUAL], 2);
	cr_assert_eq(limit_unban(&f.l, &addr, T0 + 7000), 1);
	cr_assert_eq(limit_unban(&f.l, &addr, T0 + 7000), 0);
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 7000, &r);
	cr_assert_eq(r.verdict, LIMIT_PASS);
	limit_stats(&f.l, T0 + 7000, &st);
	cr_assert_eq(st.bans_active, 0);
	/* unbanning the address lifts its agents' bans too, each counted */
	probe_until_ban(&f, &k, T0 + 8000);
	k2 = key(&f, "192.0.2.1", "wget");
	probe_until_ban(&f, &k2, T0 + 8000);
	other = key(&f, "192.0.2.2", "wget");
	probe_until_ban(&f, &other, T0 + 8000);
	cr_assert_eq(limit_unban(&f.l, &addr, T0 + 9000), 2);
	limit_check(&f.l, &k2, LIMIT_COST_PAGE, T0 + 9000, &r);
	cr_assert_eq(r.verdict, LIMIT_PASS);
	limit_check(&f.l, &other, LIMIT_COST_PAGE, T0 + 9000, &r);
	cr_assert_eq(r.verdict, LIMIT_BANNED);
	cr_assert_eq(limit_unban(&f.l, &other, T0 + 9000), 1);
	limit_check(&f.l, &other, LIMIT_COST_PAGE, T0 + 9000, &r);
	cr_assert_eq(r.verdict, LIMIT_PASS);

	cr_assert_eq(limit_ban(&f.l, &addr, 0, T0), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(limit_ban(&f.l, &addr, LIMIT_BAN_CEILING + 1, T0), -1);
	cr_assert_eq(limit_ban(&f.l, &addr, LIMIT_BAN_CEILING, T0), 0);
}

Test(bans, full_ban_table_keeps_manual_bans)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;
	struct limit_stats	 st;
	char			 a[32];
	int			 i, fails = 0;

	fx_open(&f, 1024, 64, 1, 1);
	limit_params_default(&f.p);
	f.p.mode = LIMIT_ENFORCE;
	fx_start(&f);
	/* 64 manual bans may not all fit 8 buckets of 8; count the fits */
	for (i = 0; i < 200; i++) {
		snprintf(a, sizeof(a), "10.0.%d.%d", i / 250, i % 250);
		k = key(&f, a, NULL);
		if (limit_ban(&f.l, &k, 86400, T0) != 0) {
			cr_assert_eq(errno, ENOSPC);
			fails++;
		}
	}
	cr_assert_eq(fails, 200 - 64);
	limit_stats(&f.l, T0, &st);
	cr_assert_eq(st.bans_active, 64);
	/* automatic bans cannot push out manual ones: no ban then */
	k = key(&f, "192.0.2.1", "scanner");
	for (i = 0; i < 100; i++) {
		snprintf(a, sizeof(a), "/probe/%d", i);
		request(&f, &k, LIMIT_COST_PAGE, a, 404, T0, &r);
		cr_assert_eq(r.banned_now, 0);
	}
	limit_stats(&f.l, T0, &st);
	cr_assert_eq(st.bans_active, 64);
	cr_assert_eq(st.bans_replaced, 0);
	cr_assert_eq(st.bans[LIMIT_C_PROBE], 0);
}

Test(bans, full_ban_table_replaces_the_soonest_to_end)
{
	struct fx		 f;
	struct limit_key	 k[100];
	struct limit_result	 r;
	struct limit_stats	 st;
	char			 a[32];
	int			 i, active = 0;

	fx_open(&f, 1024, 64, 1, 1);
	limit_params_default(&f.p);
	f.p.mode = LIMIT_ENFORCE;
	fx_start(&f);
	/* 100 scanners, one a second: later bans end later */
	for (i = 0; i < 100; i++) {
		snprintf(a, sizeof(a), "10.9.0.%d", i);
		k[i] = key(&f, a, "scanner");
		cr_assert_eq(probe_until_ban(&f, &k[i], T0 + i * 1000ULL), 600);
	}
	/* buckets fill unevenly: each replacement ended one ban */
	limit_stats(&f.l, T0 + 100000, &st);
	cr_assert_leq(st.bans_active, 64);
	cr_assert_geq(st.bans_replaced, 36);
	cr_assert_eq(st.bans_active + st.bans_replaced, 100);
	cr_assert_eq(st.bans[LIMIT_C_PROBE], 100);
	for (i = 0; i < 100; i++) {
		limit_check(&f.l, &k[i], LIMIT_COST_PAGE, T0 + 100000, &r);
		active += r.verdict == LIMIT_BANNED;
		/* the newest ban of each bucket is never the one replaced */
		if (i >= 92)
			cr_assert_eq(r.verdict, LIMIT_BANNED, "scanner %d", i);
	}
	cr_assert_eq(active, (int)st.bans_active);
}

/* ---- eviction ------------------------------------------------------- */

Test(evict, never_drops_connected_entries_fails_open)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;
	struct limit_info	 in;
	struct limit_stats	 st;
	char			 a[32];
	int			 i, counted = 0, untracked = 0;
	static int		 pos[600];

	fx_open(&f, 64, 64, 1, 600);
	limit_params_default(&f.p);
	f.p.mode = LIMIT_ENFORCE;
	f.p.per_address_connections = 2;
	fx_start(&f);
	for (i = 0; i < 600; i++) {
		snprintf(a, sizeof(a), "10.1.%d.%d", i / 250, i % 250);
		k = key(&f, a, NULL);
		pos[i] = limit_conn_open(&f.l, &k, T0, 0, (uint32_t)i, &r);
		counted += pos[i];
		untracked += r.untracked;
		cr_assert_eq(r.block, 0);	/* fail open, never refuse */
	}
	cr_assert_eq(counted, 64);
	cr_assert_eq(untracked, 600 - 64);
	limit_stats(&f.l, T0, &st);
	cr_assert_eq(st.evictions, 0);
	cr_assert_eq(st.untracked, 600 - 64);
	cr_assert_eq(st.entries, 64);
	/* a spray of requests from new addresses changes nothing */
	for (i = 0; i < 2000; i++) {
		snprintf(a, sizeof(a), "10.2.%d.%d", i / 250, i % 250);
		k = key(&f, a, "x");
		limit_check(&f.l, &k, LIMIT_COST_PAGE, T0, &r);
		cr_assert_eq(r.block, 0);
	}
	for (i = 0; i < 600; i++) {
		if (!pos[i])
			continue;
		snprintf(a, sizeof(a), "10.1.%d.%d", i / 250, i % 250);
		k = key(&f, a, NULL);
		cr_assert(limit_info(&f.l, &k, 1, T0, &in));
		cr_assert_eq(in.conns, 1);
		/* the cap still holds: the count survived */
		cr_assert_eq(limit_conn_open(&f.l, &k, T0, 0, 599, &r), 1);
		cr_assert_eq(limit_conn_open(&f.l, &k, T0, 0, 598, &r), 0);
		cr_assert_eq(r.verdict, LIMIT_CONNECTIONS);
		cr_assert_eq(r.block, 1);
		cr_assert_eq(r.retry_after, 1);
		limit_conn_close(&f.l, 0, 599);
	}
	/* closed: evictable again, the spray now evicts */
	for (i = 0; i < 600; i++)
		if (pos[i])
			limit_conn_close(&f.l, 0, (uint32_t)i);
	for (i = 0; i < 200; i++) {
		snprintf(a, sizeof(a), "10.3.%d.%d", i / 250, i % 250);
		k = key(&f, a, NULL);
		limit_check(&f.l, &k, LIMIT_COST_PAGE, T0, &r);
	}
	limit_stats(&f.l, T0, &st);
	cr_assert_gt(st.evictions, 0);
	cr_assert_eq(st.entries, 64);
}

Test(evict, never_drops_banned_entries)
{
	struct fx		 f;
	struct limit_key	 bad, k;
	struct limit_result	 r;
	struct limit_info	 in;
	char			 a[32];
	int			 i;

	fx_open(&f, 64, 64, 1, 1);
	limit_params_default(&f.p);
	f.p.mode = LIMIT_ENFORCE;
	fx_start(&f);
	bad = key(&f, "192.0.2.66", "scanner");
	probe_until_ban(&f, &bad, T0);
	/* 100 s on: no debt left anywhere, so only the pin keeps it; it
	 * would otherwise be the first to go, as the oldest */
	for (i = 0; i < 5000; i++) {
		snprintf(a, sizeof(a), "10.4.%d.%d", i / 250, i % 250);
		k = key(&f, a, "spray");
		limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 100000, &r);
	}
	cr_assert(limit_info(&f.l, &bad, 0, T0 + 100000, &in));
	cr_assert_eq(in.banned_flag, 1);
	cr_assert_eq(in.ban_left, 500);
	limit_check(&f.l, &bad, LIMIT_COST_PAGE, T0 + 100000, &r);
	cr_assert_eq(r.verdict, LIMIT_BANNED);
	/* after the ban the entry is an ordinary one again */
	for (i = 0; i < 5000; i++) {
		snprintf(a, sizeof(a), "10.5.%d.%d", i / 250, i % 250);
		k = key(&f, a, "spray");
		limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 700000, &r);
	}
	cr_assert(!limit_info(&f.l, &bad, 0, T0 + 700000, &in));
}

/* Addresses whose address-wide entry lands in bucket b while none of
 * their fine entries do. */
static int
same_bucket(struct fx *f, uint32_t b, struct limit_key *out, int n)
{
	struct limit_info	 in;
	struct limit_key	 k;
	char			 a[32];
	int			 i, got = 0;

	for (i = 0; i < 60000 && got < n; i++) {
		snprintf(a, sizeof(a), "10.%d.%d.%d", 6 + i / 62500,
		    i / 250 % 250, i % 250);
		k = key(f, a, "ua");
		limit_info(&f->l, &k, 1, T0, &in);
		if (in.bucket != b)
			continue;
		limit_info(&f->l, &k, 0, T0, &in);
		if (in.bucket == b)
			continue;
		out[got++] = k;
	}
	return got;
}

Test(evict, picks_the_least_loaded_unpinned_entry)
{
	struct fx		 f;
	struct limit_key	 k[9];
	struct limit_result	 r;
	struct limit_info	 in;
	struct limit_stats	 st;
	int			 i;

	fx_open(&f, 64, 64, 1, 8);
	limit_params_default(&f.p);
	f.p.mode = LIMIT_ENFORCE;
	f.p.per_address_connections = 100;
	fx_start(&f);
	cr_assert_eq(same_bucket(&f, 3, k, 9), 9);
	/* eight fill bucket 3: #0 has a connection, #5 the least debt */
	for (i = 0; i < 8; i++)
		cr_assert_eq(burst(&f, &k[i], LIMIT_COST_PAGE,
		    i == 5 ? 1 : i == 0 ? 1 : 10, T0), i == 5 || i == 0 ? 1 : 10);
	cr_assert_eq(limit_conn_open(&f.l, &k[0], T0, 0, 0, &r), 1);
	limit_stats(&f.l, T0, &st);
	cr_assert_eq(st.evictions, 0);
	limit_check(&f.l, &k[8], LIMIT_COST_PAGE, T0, &r);
	cr_assert_eq(r.untracked, 0);
	limit_stats(&f.l, T0, &st);
	cr_assert_eq(st.evictions, 1);
	for (i = 0; i < 9; i++)
		cr_assert_eq(limit_info(&f.l, &k[i], 1, T0, &in), i != 5,
		    "entry %d", i);
	/* then the oldest among equals; #0 stays, it is connected */
	limit_conn_close(&f.l, 0, 0);
	cr_assert_eq(limit_conn_open(&f.l, &k[0], T0, 0, 0, &r), 1);
	for (i = 1; i < 9; i++)
		if (i != 5)
			limit_check(&f.l, &k[i], LIMIT_COST_PAGE, T0 + 999999, &r);
	limit_check(&f.l, &k[5], LIMIT_COST_PAGE, T0 + 1000000, &r);
	cr_assert_eq(limit_info(&f.l, &k[0], 1, T0 + 1000000, &in), 1);
	cr_assert_eq(limit_info(&f.l, &k[1], 1, T0 + 1000000, &in), 0);
}

Test(evict, a_request_never_evicts_its_own_other_key)
{
	struct fx		 f;
	struct limit_key	 fill[8], x;
	struct limit_info	 in;
	char			 a[32];
	uint32_t		 b = 0;
	int			 i;

	fx_open(&f, 64, 64, 1, 1);
	limit_params_default(&f.p);
	f.p.mode = LIMIT_ENFORCE;
	fx_start(&f);
	/* an address whose two keys hash to the same bucket */
	for (i = 0; i < 10000; i++) {
		snprintf(a, sizeof(a), "10.7.%d.%d", i / 250, i % 250);
		x = key(&f, a, "ua");
		limit_info(&f.l, &x, 1, T0, &in);
		b = in.bucket;
		limit_info(&f.l, &x, 0, T0, &in);
		if (in.bucket == b)
			break;
	}
	cr_assert_lt(i, 10000);
	/* that bucket full of entries in debt: the fresh fine entry is
	 * then the cheapest victim for the address-wide one */
	cr_assert_eq(same_bucket(&f, b, fill, 8), 8);
	for (i = 0; i < 8; i++)
		cr_assert_eq(burst(&f, &fill[i], LIMIT_COST_PAGE, 10, T0), 10);
	cr_assert_eq(burst(&f, &x, LIMIT_COST_PAGE, 1000, T0), 400);
	cr_assert(limit_info(&f.l, &x, 0, T0, &in));
	cr_assert_eq(in.debt_ms, 20000);
	cr_assert(limit_info(&f.l, &x, 1, T0, &in));
	cr_assert_eq(in.debt_ms, 5000);
}

/* ---- locks, ledger, dead workers -------------------------------------- */

/* A worker: attach as itself, count conns connections in slot, then take
 * lock word `shard` of the client table and die holding it. */
static pid_t
dying_worker(struct fx *f, const struct limit_key *k, int conns,
    uint32_t slot, uint32_t shard)
{
	struct limit_result	 r;
	struct limit		 me;
	pid_t			 pid;
	int			 i;

	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (limit_attach(&me, f->mem, f->len, &f->p, getpid()) != 0)
			_exit(1);
		for (i = 0; i < conns; i++)
			if (limit_conn_open(&me, k, T0, slot, (uint32_t)i, &r) != 1)
				_exit(2);
		limit_lock(&limit_locks(me.l_shm)[shard], me.l_owner);
		_exit(0);
	}
	return pid;
}

Test(repair, lock_and_connections_of_a_dead_worker)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;
	struct limit_info	 in;
	struct limit_shm	*s;
	size_t			 conns = 99, locks = 99;
	uint32_t		 shard;
	pid_t			 pid;
	int			 st, i;

	fx_open(&f, 1024, 64, 4, 16);
	limit_params_default(&f.p);
	f.p.mode = LIMIT_ENFORCE;
	f.p.per_address_connections = 4;
	fx_start(&f);
	s = f.l.l_shm;
	k = key(&f, "192.0.2.1", "pupil");
	/* the master's own worker (slot 0) holds one connection */
	cr_assert_eq(limit_conn_open(&f.l, &k, T0, 0, 0, &r), 1);
	limit_info(&f.l, &k, 1, T0, &in);
	shard = in.bucket % s->ls_nshards;

	pid = dying_worker(&f, &k, 3, 2, shard);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d", st);
	cr_assert_eq(limit_locks(s)[shard].lk_owner, (uint32_t)pid);

	/* another dead pid's repair touches neither lock nor ledger */
	cr_assert_eq(limit_repair(&f.l, pid + 100000, 3, &locks, &conns), 0);
	cr_assert_eq(locks, 0);
	cr_assert_eq(conns, 0);
	cr_assert_eq(limit_locks(s)[shard].lk_owner, (uint32_t)pid);

	cr_assert_eq(limit_repair(&f.l, pid, 2, &locks, &conns), 0);
	cr_assert_eq(locks, 1);
	cr_assert_eq(conns, 3);
	cr_assert_eq(limit_locks(s)[shard].lk_owner, 0);
	cr_assert(limit_info(&f.l, &k, 1, T0, &in));
	cr_assert_eq(in.conns, 1);	/* exactly the dead worker's went */
	/* the cap of 4 lets three more in, not a fourth */
	for (i = 1; i <= 3; i++)
		cr_assert_eq(limit_conn_open(&f.l, &k, T0, 0, (uint32_t)i, &r),
		    1);
	cr_assert_eq(limit_conn_open(&f.l, &k, T0, 0, 4, &r), 0);
	cr_assert_eq(r.verdict, LIMIT_CONNECTIONS);
	for (i = 0; i <= 3; i++)
		limit_conn_close(&f.l, 0, (uint32_t)i);
	limit_info(&f.l, &k, 1, T0, &in);
	cr_assert_eq(in.conns, 0);
	limit_conn_close(&f.l, 0, 0);	/* twice: no underflow */
	limit_info(&f.l, &k, 1, T0, &in);
	cr_assert_eq(in.conns, 0);
}

/*
 * Two workers die; the one reaped first counted a connection in a shard
 * whose lock the other, not yet reaped, still holds. The first repair
 * must come back (not spin for good) and finish once the second is done.
 */
Test(repair, two_dead_workers_one_holding_the_others_shard)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_info	 in;
	struct limit_shm	*s;
	size_t			 conns, locks;
	uint32_t		 shard;
	pid_t			 a, b;
	int			 st;

	fx_open(&f, 1024, 64, 4, 16);
	limit_params_default(&f.p);
	f.p.mode = LIMIT_ENFORCE;
	f.p.per_address_connections = 10;
	fx_start(&f);
	s = f.l.l_shm;
	k = key(&f, "192.0.2.1", "pupil");
	limit_info(&f.l, &k, 1, T0, &in);
	shard = in.bucket % s->ls_nshards;
	a = dying_worker(&f, &k, 2, 1, (shard + 1) % s->ls_nshards);
	cr_assert_eq(waitpid(a, &st, 0), a);
	b = dying_worker(&f, &k, 0, 2, shard);
	cr_assert_eq(waitpid(b, &st, 0), b);

	cr_assert_eq(limit_repair(&f.l, a, 1, &locks, &conns), 1);
	cr_assert_eq(locks, 1);
	cr_assert_eq(conns, 0);
	cr_assert_eq(limit_repair(&f.l, b, 2, &locks, &conns), 0);
	cr_assert_eq(locks, 1);
	cr_assert_eq(limit_repair(&f.l, 0, 1, &locks, &conns), 0);
	cr_assert_eq(locks, 0);
	cr_assert_eq(conns, 2);
	limit_info(&f.l, &k, 1, T0, &in);
	cr_assert_eq(in.conns, 0);
}

Test(repair, a_live_owner_keeps_its_lock)
{
	struct fx		 f;
	struct limit		 me;
	struct limit_shm	*s;
	size_t			 locks;
	int			 go[2], ready[2], st;
	char			 c = 0;
	pid_t			 pid;

	fx_open(&f, 1024, 64, 1, 1);
	limit_params_default(&f.p);
	fx_start(&f);
	s = f.l.l_shm;
	cr_assert_eq(pipe(go), 0);
	cr_assert_eq(pipe(ready), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* only the parent's end: its death ends our read */
		close(go[1]);
		close(ready[0]);
		if (limit_attach(&me, f.mem, f.len, &f.p, getpid()) != 0)
			_exit(1);
		limit_lock(&limit_locks(me.l_shm)[7], me.l_owner);
		limit_lock(&limit_ban_locks(me.l_shm)[2], me.l_owner);
		if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(2);
		limit_unlock(&limit_ban_locks(me.l_shm)[2]);
		limit_unlock(&limit_locks(me.l_shm)[7]);
		_exit(0);
	}
	close(go[0]);
	close(ready[1]);
	cr_assert_eq(read(ready[0], &c, 1), 1);
	/* the master repairs after some other worker's death */
	cr_assert_eq(limit_repair(&f.l, pid + 1, UINT32_MAX, &locks, NULL),
	    0);
	cr_assert_eq(locks, 0);
	cr_assert_eq(limit_locks(s)[7].lk_owner, (uint32_t)pid);
	cr_assert_eq(limit_ban_locks(s)[2].lk_owner, (uint32_t)pid);
	cr_assert_eq(write(go[1], &c, 1), 1);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cr_assert_eq(limit_locks(s)[7].lk_owner, 0);
	cr_assert_eq(limit_ban_locks(s)[2].lk_owner, 0);
}

Test(repair, dead_worker_holding_a_ban_lock)
{
	struct fx		 f;
	struct limit_shm	*s;
	struct limit		 me;
	struct limit_key	 k;
	struct limit_result	 r;
	size_t			 locks;
	uint32_t		 i;
	pid_t			 pid;
	int			 st;

	fx_open(&f, 1024, 512, 1, 1);
	limit_params_default(&f.p);
	f.p.mode = LIMIT_ENFORCE;
	fx_start(&f);
	s = f.l.l_shm;
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (limit_attach(&me, f.mem, f.len, &f.p, getpid()) != 0)
			_exit(1);
		for (i = 0; i < s->ls_nban_shards; i++)
			limit_lock(&limit_ban_locks(s)[i], me.l_owner);
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert_eq(limit_repair(&f.l, pid, UINT32_MAX, &locks, NULL), 0);
	cr_assert_eq(locks, s->ls_nban_shards);
	/* bans work again: a probe storm still bans */
	k = key(&f, "192.0.2.1", "scanner");
	probe_until_ban(&f, &k, T0);
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0, &r);
	cr_assert_eq(r.verdict, LIMIT_BANNED);
}

Test(repair, workers_share_one_table)
{
	struct fx		 f;
	struct limit		 me;
	struct limit_key	 k;
	pid_t			 pid[4];
	int			 i, j, st, ok;

	fx_default(&f);
	fx_start(&f);
	k = key(&f, "192.0.2.1", "curl");
	/* four processes, 200 pages each at the same instant: 400 in all */
	for (i = 0; i < 4; i++) {
		pid[i] = fork();
		cr_assert_geq(pid[i], 0);
		if (pid[i] == 0) {
			if (limit_attach(&me, f.mem, f.len, &f.p, getpid()) != 0)
				_exit(255);
			f.l = me;
			ok = burst(&f, &k, LIMIT_COST_PAGE, 200, T0);
			_exit(ok);
		}
	}
	for (i = 0, ok = 0; i < 4; i++) {
		cr_assert_eq(waitpid(pid[i], &st, 0), pid[i]);
		cr_assert(WIFEXITED(st));
		j = WEXITSTATUS(st);
		cr_assert_neq(j, 255);
		ok += j;
	}
	cr_assert_eq(ok, 400);
}

/* ---- region and parameters ---------------------------------------------- */

Test(region, geometry_and_attach)
{
	struct limit_geometry	 g = { 1024, 256, 4, 64 };
	struct limit_params	 p;
	struct limit		 l;
	char			 err[128];
	void			*mem;
	size_t			 len;

	len = limit_size(&g);
	cr_assert_geq(len, 1024 * 64 + 256 * 40 + 4 * 64 * 4);
	cr_assert_eq(posix_memalign(&mem, 64, len), 0);
	memset(mem, 0xa5, len);		/* init needs no zeroed memory */
	limit_params_default(&p);
	cr_assert_eq(limit_params_prepare(&p, err, sizeof(err)), 0);
	cr_assert_eq(limit_attach(&l, mem, len, &p, getpid()), -1);
	cr_assert_eq(limit_init(mem, len - 1, &g, SEED, T0), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(limit_init((char *)mem + 8, len - 8, &g, SEED, T0), -1);
	cr_assert_eq(limit_init(mem, len, &g, SEED, T0), 0);
	cr_assert_eq(limit_attach(&l, mem, len - 1, &p, getpid()), -1);
	cr_assert_eq(limit_attach(&l, mem, len, &p, getpid()), 0);
	free(mem);

	g.lg_table_size = 1004;		/* not a multiple of 8 */
	cr_assert_eq(limit_size(&g), 0);
	g.lg_table_size = 32;
	cr_assert_eq(limit_size(&g), 0);
	g.lg_table_size = 1 << 24;
	g.lg_ban_table_size = 1 << 21;
	cr_assert_eq(limit_size(&g), 0);
}

Test(region, seed_moves_buckets)
{
	struct fx		 f1, f2;
	struct limit_key	 k;
	struct limit_info	 a, b;
	static const uint8_t	 other[16] = "fedcba9876543210";
	char			 s[32];
	int			 i, differ = 0;

	fx_default(&f1);
	fx_start(&f1);
	fx_default(&f2);
	cr_assert_eq(limit_init(f2.mem, f2.len, &f2.g, other, T0), 0);
	fx_start(&f2);
	for (i = 0; i < 32; i++) {
		snprintf(s, sizeof(s), "192.0.2.%d", i);
		k = key(&f1, s, NULL);
		limit_info(&f1.l, &k, 1, T0, &a);
		limit_info(&f2.l, &k, 1, T0, &b);
		differ += a.bucket != b.bucket;
	}
	cr_assert_gt(differ, 16);
}

Test(region, params_are_checked)
{
	struct limit_params	 p;
	char			 err[128];

	limit_params_default(&p);
	p.ipv6_prefix = 16;
	cr_assert_eq(limit_params_prepare(&p, err, sizeof(err)), -1);
	cr_assert(strstr(err, "ipv6_prefix") != NULL, "%s", err);
	limit_params_default(&p);
	p.rate = 0;
	cr_assert_eq(limit_params_prepare(&p, err, sizeof(err)), -1);
	limit_params_default(&p);
	p.asset_weight = 0;
	cr_assert_eq(limit_params_prepare(&p, err, sizeof(err)), -1);
	limit_params_default(&p);
	p.ban_shared_max_time = p.ban_max_time + 1;
	cr_assert_eq(limit_params_prepare(&p, err, sizeof(err)), -1);
	cr_assert(strstr(err, "shared_max_time") != NULL, "%s", err);
	limit_params_default(&p);
	p.per_address_connections = 70000;
	cr_assert_eq(limit_params_prepare(&p, err, sizeof(err)), -1);
	limit_params_default(&p);
	cr_assert_eq(limit_params_prepare(&p, err, sizeof(err)), 0);
	cr_assert_eq(p.lp_inc[0][LIMIT_COST_PAGE], 50000);
	cr_assert_eq(p.lp_inc[0][LIMIT_COST_ASSET], 12500);
	cr_assert_eq(p.lp_tau[0], 20000000);
}

/* ---- a classroom behind one address ------------------------------------- */

#define PUPILS	30
#define NAT	"203.0.113.7"

/* Most pupils run the school's browser; a few brought their own. */
static const char *
pupil_agent(int i)
{
	return i < 26 ? "Mozilla/5.0 (Windows NT 10.0) Chrome/120" :
	    i < 28 ? "Mozilla/5.0 (X11; Linux) Firefox/121" :
	    "Mozilla/5.0 (Macintosh) Safari/17";
}

Test(classroom, thirty_pupils_load_a_page_at_once)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;
	struct limit_stats	 st;
	char			 path[64];
	int			 i, j, refused = 0;
	uint64_t		 t;

	fx_default(&f);
	fx_start(&f);
	/* every pupil: the page, then 30 assets, all within 2 s; rounds
	 * interleave the pupils the way the network would */
	for (j = 0; j <= 30; j++)
		for (i = 0; i < PUPILS; i++) {
			k = key(&f, NAT, pupil_agent(i));
			t = T0 + (uint64_t)(i * 37 % 500) + (uint64_t)j * 45;
			snprintf(path, sizeof(path), j == 0 ? "/lesson.html" :
			    "/static/%d.png", j);
			request(&f, &k, j == 0 ? LIMIT_COST_PAGE :
			    LIMIT_COST_ASSET, path, 200, t, &r);
			cr_assert_lt(t, T0 + 2000);
			refused += r.block;
		}
	cr_assert_eq(refused, 0);
	limit_stats(&f.l, T0 + 2000, &st);
	cr_assert_eq(st.rejected[LIMIT_R_RATE][0], 0);
	cr_assert_eq(st.bans_active, 0);
}

Test(classroom, a_scraper_next_door)
{
	struct fx		 f;
	struct limit_key	 pupil[PUPILS], bot;
	struct limit_result	 r;
	struct limit_info	 in;
	char			 path[64];
	int			 i, page = 0, limited_at = -1, banned_at = -1;
	long			 pupil_reqs = 0, pupil_refused = 0, tick;
	uint64_t		 t;

	fx_default(&f);
	fx_start(&f);
	for (i = 0; i < PUPILS; i++)
		pupil[i] = key(&f, NAT, pupil_agent(i));
	bot = key(&f, NAT, "Mozilla/5.0 (compatible; HungryBot/2.1)");
	/*
	 * 10 ms ticks for 200 s. The bot asks for pages 0..499 and again,
	 * 100 a second, and never waits. Each pupil opens a page and its
	 * 30 assets every 20 s, staggered, the assets 40 ms apart.
	 */
	for (tick = 0; tick < 20000; tick++) {
		t = T0 + (uint64_t)tick * 10;
		snprintf(path, sizeof(path), "/archive/%d.html", page % 500);
		request(&f, &bot, LIMIT_COST_PAGE, path, 200, t, &r);
		if (r.verdict == LIMIT_RATE && limited_at < 0)
			limited_at = (int)tick;
		if (r.banned_now) {
			cr_assert_eq(r.ban_aggregate, 0);
			cr_assert_eq(r.cause, LIMIT_C_IGNORED);
			banned_at = (int)tick;
		}
		if (!r.block)
			page++;
		for (i = 0; i < PUPILS; i++) {
			long phase = (tick - i * 61) % 2000;

			if (tick < i * 61 || phase % 4 != 0 || phase / 4 > 30)
				continue;
			snprintf(path, sizeof(path), phase == 0 ?
			    "/lesson/%ld.html" : "/static/%ld.css", phase);
			request(&f, &pupil[i], phase == 0 ? LIMIT_COST_PAGE :
			    LIMIT_COST_ASSET, path, 200, t, &r);
			pupil_reqs++;
			pupil_refused += r.block;
			cr_assert_eq(r.banned_now, 0);
		}
	}
	cr_assert_geq(limited_at, 0);
	cr_assert_gt(banned_at, limited_at);
	cr_assert_geq(page, 500);	/* it did get its 500 pages first */
	limit_check(&f.l, &bot, LIMIT_COST_PAGE, t, &r);
	cr_assert_eq(r.verdict, LIMIT_BANNED);
	/* the pupils: no ban on them or the address, under 1% refused */
	cr_assert_gt(pupil_reqs, 30L * 31 * 9);
	cr_assert_lt(pupil_refused * 100, pupil_reqs, "%ld of %ld",
	    pupil_refused, pupil_reqs);
	for (i = 0; i < PUPILS; i++) {
		limit_info(&f.l, &pupil[i], 0, t, &in);
		cr_assert_eq(in.ban_left, 0);
	}
	limit_info(&f.l, &pupil[0], 1, t, &in);
	cr_assert_eq(in.ban_left, 0);
	cr_assert_eq(in.shared, 1);
}
