/*
 * limit_fx.h - the fixture the client-limit tests share (test_limit.c,
 * test_limit_key.c, test_limit_table.c, test_limit_ban.c): a region in
 * a shared anonymous mapping, keys made from address strings, and
 * requests at an injected time. No helper reads a clock or sleeps.
 */
#ifndef PORTER_TEST_LIMIT_FX_H
#define PORTER_TEST_LIMIT_FX_H

#include <stddef.h>
#include <stdint.h>

#include "limit.h"

#define T0	1000000ULL	/* ms: an arbitrary monotonic start */

struct fx {
	void			*mem;
	size_t			 len;
	struct limit_geometry	 g;
	struct limit_params	 p;
	struct limit		 l;
};

extern const uint8_t SEED[16];

/* A shared anonymous mapping, as the master will make before forking. */
void	 fx_open(struct fx *f, uint32_t table, uint32_t bans, uint32_t slots,
	    uint32_t ledger);
/* Defaults, enforce, then attach as this process. */
void	 fx_start(struct fx *f);
/* fx_open() with small tables, default parameters in enforce mode. */
void	 fx_default(struct fx *f);
/* The key of addr (IPv4 or IPv6) with agent ua (NULL: none). */
struct limit_key fx_key(struct fx *f, const char *addr, const char *ua);
/* n requests of cost c at time t; returns how many passed. */
int	 fx_burst(struct fx *f, const struct limit_key *k, enum limit_cost c,
	    int n, uint64_t t);
/* A request and its status, as the wired server will do it. */
void	 fx_request(struct fx *f, const struct limit_key *k,
	    enum limit_cost c, const char *path, int status, uint64_t t,
	    struct limit_result *r);
/* Distinct 404s on pages at t until a ban starts; returns its length. */
uint32_t fx_probe_until_ban(struct fx *f, const struct limit_key *k,
	    uint64_t t);

#endif
