/*
 * limit_fx.c - the client-limit tests' shared fixture (limit_fx.h).
 */
#include <sys/mman.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "limit_fx.h"

const uint8_t SEED[16] = "0123456789abcdef";

void
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

void
fx_start(struct fx *f)
{
	char	 err[128];

	cr_assert_eq(limit_params_prepare(&f->p, err, sizeof(err)), 0, "%s",
	    err);
	cr_assert_eq(limit_attach(&f->l, f->mem, f->len, &f->p, getpid()), 0);
}

void
fx_default(struct fx *f)
{
	fx_open(f, 1024, 256, 4, 64);
	limit_params_default(&f->p);
	f->p.mode = LIMIT_ENFORCE;
}

struct limit_key
fx_key(struct fx *f, const char *addr, const char *ua)
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

int
fx_burst(struct fx *f, const struct limit_key *k, enum limit_cost c, int n,
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

void
fx_request(struct fx *f, const struct limit_key *k, enum limit_cost c,
    const char *path, int status, uint64_t t, struct limit_result *r)
{
	limit_check(&f->l, k, c, t, r);
	if (!r->block)
		limit_finish(&f->l, k, status, c, path, strlen(path), t, r);
}

uint32_t
fx_probe_until_ban(struct fx *f, const struct limit_key *k, uint64_t t)
{
	struct limit_result	 r;
	char			 path[64];
	static int		 serial;	/* every path is new */
	int			 i;

	for (i = 0; i < 1000; i++) {
		snprintf(path, sizeof(path), "/wp-admin/%d.php", serial++);
		fx_request(f, k, LIMIT_COST_PAGE, path, 404, t, &r);
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

