/*
 * climit.c - the worker's side of the client limits: each connection
 * and each request goes through the engine (limit.h) in the tables the
 * master shares, and what it decides is logged here. The 429 itself is
 * http.c's (http_limit_respond()), which knows sites and error pages.
 *
 * The client is always the connection's peer (c->peer, q->peer): the
 * PROXY code puts the client's address there, and no copy of it is
 * kept. A connection remembers only its place in the ledger (lim_pos).
 *
 * Logs (the error log): the first refusal of a key in a minute gets a
 * line, further ones are counted and summed up in one line when the
 * minute is over; each ban started gets a line. Keys are tracked for
 * that in a small direct-mapped table: two keys that collide share a
 * line's count, which costs at most an extra line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "porter.h"
#include "climit.h"

#define CLIMIT_LOG_SLOTS	64
#define CLIMIT_MINUTE_MS	60000
#define CLIMIT_CACHE_SLOTS	64	/* recent (address, agent) keys */
#define CLIMIT_UA_MAX		192	/* longer agents are not cached */

/*
 * The keys of recent clients with their buckets worked out
 * (limit_key_hint()): a keep-alive client's next request finds its key
 * here by comparing its address and User-Agent bytes, and spares three
 * keyed hashes. Exact: a hit needs the same address and the same agent
 * bytes, so nobody can borrow another client's key.
 */
struct climit_kc {
	struct limit_key k;
	uint8_t		 addr[16];
	uint8_t		 family;
	uint16_t	 ualen;
	char		 ua[CLIMIT_UA_MAX];
};

struct climit_logent {
	uint64_t	 hash;		/* 0: free */
	uint64_t	 start;		/* ev_now() ms of the first line */
	uint32_t	 more;		/* refusals since */
	char		 who[64];	/* "203.0.113.7 ua:5f2c" */
};

static struct {
	int		 on;
	const struct conf_limits *cl;
	struct limit	 l;
	struct ev_loop	*loop;
	uint32_t	 slot;
	uint32_t	*free_pos;	/* ledger places not in use */
	uint32_t	 nfree;
	struct climit_logent log[CLIMIT_LOG_SLOTS];
	struct climit_kc kc[CLIMIT_CACHE_SLOTS];
} cw;

ssize_t
climit_metrics_append(char *buf, size_t size, size_t len)
{
	struct limit_stats ls;
	ssize_t n;

	if (!cw.on)
		return (ssize_t)len;
	limit_stats(&cw.l, ev_now(cw.loop), &ls);
	if (len >= size || (n = climit_metrics_render(buf + len, size - len,
	    &ls)) == -1) {
		errno = ENOBUFS;
		return -1;
	}
	return (ssize_t)len + n;
}

/* FNV-1a over k's fine key: picks the log slot. */
static uint64_t
climit_key_hash(const struct limit_key *k)
{
	uint64_t h = 14695981039346656037ULL;
	size_t i;

	for (i = 0; i < 16; i++)
		h = (h ^ k->lk_net.lc_addr[i]) * 1099511628211ULL;
	h = (h ^ k->lk_net.lc_prefix) * 1099511628211ULL;
	return (h ^ k->lk_agent) * 1099511628211ULL;
}

void
climit_worker_init(const struct conf *conf, unsigned slot,
    struct ev_loop *loop)
{
	const struct conf_limits *cl = conf->limits;
	size_t len, i, npos;
	void *mem;

	memset(&cw, 0, sizeof(cw));
	if (cl == NULL || cl->p.mode == LIMIT_OFF)
		return;
	if ((mem = climit_region(&len)) == NULL ||
	    limit_attach(&cw.l, mem, len, &cl->p, getpid()) == -1) {
		log_warnx("client_limits: no shared table; not limiting");
		return;
	}
	cw.cl = cl;
	cw.loop = loop;
	cw.slot = slot;
	npos = (size_t)conf->max_connections + CLIMIT_POS_SPARE;
	if (npos > climit_ledger_size())
		npos = climit_ledger_size();
	cw.free_pos = xcalloc(npos ? npos : 1, sizeof(uint32_t));
	/* Handed out from the low end first. */
	for (i = 0; i < npos; i++)
		cw.free_pos[i] = (uint32_t)(npos - 1 - i);
	cw.nfree = (uint32_t)npos;
	cw.on = 1;
}

/* "203.0.113.7", "2001:db8:1::/64 ua:5f2c": the key as the log shows it. */
static void
climit_who(const struct limit_key *k, int fine, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];
	int full = k->lk_net.lc_family == AF_INET ? 32 : 128;
	int n;

	if (inet_ntop(k->lk_net.lc_family, k->lk_net.lc_addr, addr,
	    sizeof(addr)) == NULL)
		strcpy(addr, "?");
	if (k->lk_net.lc_prefix < full)
		n = snprintf(buf, len, "%s/%u", addr, k->lk_net.lc_prefix);
	else
		n = snprintf(buf, len, "%s", addr);
	if (fine && k->lk_agent != 0 && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, " ua:%04x",
		    (unsigned)(k->lk_agent & 0xffff));
}

static const char *
climit_dry(void)
{
	return cw.cl->p.mode == LIMIT_DRY_RUN ? " (dry-run)" : "";
}

/* A refusal of k (verdict v, told to wait ra s): a line, or a count. */
static void
climit_log_refusal(const struct limit_key *k, enum limit_verdict v,
    uint32_t ra)
{
	uint64_t now = ev_now(cw.loop);
	uint64_t h = climit_key_hash(k) | 1;	/* 0 marks a free slot */
	struct climit_logent *e = &cw.log[h % CLIMIT_LOG_SLOTS];
	const struct limit_params *p = &cw.cl->p;

	if (e->hash == h && now < e->start + CLIMIT_MINUTE_MS) {
		e->more++;
		return;
	}
	if (e->hash != 0 && e->more > 0)
		log_notice("limit: %s: %u more 429s in %llu s%s", e->who,
		    e->more, (unsigned long long)(now - e->start + 999) / 1000,
		    climit_dry());
	e->hash = h;
	e->start = now;
	e->more = 0;
	climit_who(k, 1, e->who, sizeof(e->who));
	switch (v) {
	case LIMIT_RATE:
		log_notice("limit: %s over %g/s burst %g: 429 for %u s%s",
		    e->who, p->rate, p->burst, ra, climit_dry());
		break;
	case LIMIT_CONNECTIONS:
		log_notice("limit: %s over %u open connections: 429%s",
		    e->who, p->per_address_connections, climit_dry());
		break;
	default:
		log_notice("limit: %s banned: 429 for %u s%s", e->who, ra,
		    climit_dry());
		break;
	}
}

void
climit_tick(uint64_t now_ms)
{
	struct climit_logent *e;
	size_t i;

	if (!cw.on)
		return;
	for (i = 0; i < CLIMIT_LOG_SLOTS; i++) {
		e = &cw.log[i];
		if (e->hash == 0 || now_ms < e->start + CLIMIT_MINUTE_MS)
			continue;
		if (e->more > 0)
			log_notice("limit: %s: %u more 429s in 60 s%s", e->who,
			    e->more, climit_dry());
		e->hash = 0;
	}
}

static void
climit_log_ban(const struct limit_key *k, const struct limit_result *res)
{
	char who[64];

	climit_who(k, !res->ban_aggregate, who, sizeof(who));
	log_warnx("ban: %s for %u s%s: %s%s", who, res->ban_seconds,
	    res->shared ? " (shared address)" : "",
	    res->cause == LIMIT_C_PROBE ? "400/403/404s on distinct paths" :
	    "kept sending while told to wait", climit_dry());
}

int
climit_conn_open(struct conn *c)
{
	struct limit_result res;
	struct limit_key k;
	uint32_t pos = UINT32_MAX;
	int can_answer;

	if (!cw.on)
		return 0;
	/* Every protocol but echo answers HTTP requests: it can say 429. */
	can_answer = strcmp(c->proto->name, "echo") != 0;
	if (limit_key_from_sockaddr(&cw.cl->p, &c->peer.sa, sizeof(c->peer),
	    0, &k) == -1)
		return 0;	/* not an IP peer */
	if (cw.cl->p.per_address_connections > 0 && cw.nfree > 0)
		pos = cw.free_pos[cw.nfree - 1];
	if (limit_conn_open(&cw.l, &k, ev_now(cw.loop), cw.slot, pos, &res)) {
		cw.nfree--;
		c->lim_pos = pos;
		c->lim_state |= CLIMIT_S_COUNTED;
	}
	/* A ban answered per request is logged there. */
	if (res.verdict == LIMIT_CONNECTIONS || (res.verdict == LIMIT_BANNED &&
	    (cw.cl->action_close || !can_answer)))
		climit_log_refusal(&k, res.verdict, res.retry_after);
	if (!res.block)
		return 0;
	/* A ban with action "respond" is answered per request. */
	if (res.verdict == LIMIT_BANNED && !cw.cl->action_close && can_answer)
		return 0;
	if (res.verdict == LIMIT_CONNECTIONS && can_answer) {
		c->lim_state |= CLIMIT_S_REFUSE;
		return 0;
	}
	return -1;
}

void
climit_conn_close(struct conn *c)
{
	if (!(c->lim_state & CLIMIT_S_COUNTED))
		return;
	c->lim_state &= (uint8_t)~CLIMIT_S_COUNTED;
	if (!cw.on)
		return;
	limit_conn_close(&cw.l, cw.slot, c->lim_pos);
	cw.free_pos[cw.nfree++] = c->lim_pos;
}

/*
 * Is path (its last segment's extension) an asset: a style sheet,
 * script, image, font, audio or video? The extensions mime.types gives
 * the types limit_mime_is_asset() names, looked up without a MIME
 * search: this runs for every request.
 */
static int
climit_path_is_asset(const char *path, size_t len)
{
	uint64_t v = 0;
	size_t i, n;

	for (i = len; i > 0 && path[i - 1] != '.'; i--)
		if (len - i >= 5 || path[i - 1] == '/')
			return 0;
	if (i == 0 || i == len)
		return 0;
	for (n = 0; i < len; i++, n++)	/* ASCII lower case: | 0x20 */
		v |= (uint64_t)(unsigned char)(path[i] >= 'A' &&
		    path[i] <= 'Z' ? path[i] | 0x20 : path[i]) << (8 * n);
	/* the extension as a little-endian integer of its bytes: a switch
	 * the compiler turns into a few comparisons */
#define E(a, b, c, d, e)	((uint64_t)(a) | (uint64_t)(b) << 8 |	\
	(uint64_t)(c) << 16 | (uint64_t)(d) << 24 | (uint64_t)(e) << 32)
	switch (v) {
	case E('c','s','s',0,0): case E('j','s',0,0,0): case E('m','j','s',0,0):
	case E('p','n','g',0,0): case E('j','p','g',0,0):
	case E('j','p','e','g',0): case E('g','i','f',0,0):
	case E('w','e','b','p',0): case E('a','v','i','f',0):
	case E('s','v','g',0,0): case E('s','v','g','z',0):
	case E('i','c','o',0,0): case E('b','m','p',0,0):
	case E('w','o','f','f',0): case E('w','o','f','f','2'):
	case E('t','t','f',0,0): case E('o','t','f',0,0):
	case E('e','o','t',0,0): case E('m','p','4',0,0):
	case E('w','e','b','m',0): case E('m','p','3',0,0):
	case E('o','g','g',0,0): case E('o','g','a',0,0):
	case E('o','g','v',0,0): case E('o','p','u','s',0):
	case E('w','a','v',0,0): case E('f','l','a','c',0):
	case E('m','4','a',0,0): case E('w','a','s','m',0):
		return 1;
	}
#undef E
	return 0;
}

/* q's key: from the cache, or made (and hinted, and cached). */
static int
climit_key(const struct request *q, struct limit_key *k)
{
	const struct limit_params *p = &cw.cl->p;
	const struct http_span *uas = &q->h->known[HTTP_H_USER_AGENT];
	const char *ua = uas->len ? q->buf + uas->off : NULL;
	const struct sockaddr *sa = q->peer;
	const uint8_t *addr;
	struct climit_kc *e;
	size_t alen, ualen = uas->len;
	uint64_t h = 0;
	uint8_t fam = 0;

	if (sa->sa_family == AF_INET) {
		addr = (const uint8_t *)&((const struct sockaddr_in *)
		    (const void *)sa)->sin_addr;
		alen = 4;
		fam = 4;
	} else if (sa->sa_family == AF_INET6) {
		addr = ((const struct sockaddr_in6 *)(const void *)sa)->
		    sin6_addr.s6_addr;
		alen = 16;
		fam = 6;
	} else
		return -1;
	if (!p->split_by_agent)
		ualen = 0;
	/* Which slot: the address's last bytes, the agent's length and end. */
	memcpy(&h, addr + alen - 4, 4);
	h ^= (uint64_t)ualen << 32;
	if (ualen >= 8) {
		uint64_t t;

		memcpy(&t, ua + ualen - 8, 8);
		h ^= t;
	}
	h *= 0x9e3779b97f4a7c15ULL;
	e = &cw.kc[h >> 58];		/* 64 slots */
	if (e->family == fam && e->ualen == ualen &&
	    memcmp(e->addr, addr, alen) == 0 &&
	    memcmp(e->ua, ua != NULL ? ua : "", ualen) == 0) {
		*k = e->k;
		return 0;
	}
	if (limit_key_from_sockaddr(p, sa, sizeof(struct sockaddr_in6),
	    p->split_by_agent ? limit_agent_hash(&cw.l, ua, ualen) : 0,
	    k) == -1)
		return -1;
	limit_key_hint(&cw.l, k);
	if (ualen <= CLIMIT_UA_MAX) {
		e->k = *k;
		memcpy(e->addr, addr, alen);
		e->family = fam;
		e->ualen = (uint16_t)ualen;
		if (ualen > 0)
			memcpy(e->ua, ua, ualen);
	}
	return 0;
}

int
climit_request(const struct request *q, const struct resp *r,
    struct climit_answer *a)
{
	const struct http_req *h = q->h;
	struct limit_result res;
	struct limit_key k;
	enum limit_cost cost;
	const char *path = q->buf + h->path.off;
	size_t plen = h->path.len;
	uint64_t now;

	if (!cw.on || (q->lim_state & CLIMIT_S_EXEMPT))
		return 0;
	memset(a, 0, sizeof(*a));
	if (q->lim_state & CLIMIT_S_REFUSE) {
		a->block = 1;
		a->close = 1;
		a->retry_after = 1;
		return 1;
	}
	if (climit_key(q, &k) == -1)
		return 0;	/* not an IP peer */
	/* 304s and assets (by the path's type, also for errors) are cheap. */
	cost = r->status == 304 || climit_path_is_asset(path, plen) ?
	    LIMIT_COST_ASSET : LIMIT_COST_PAGE;
	now = ev_now(cw.loop);
	limit_check(&cw.l, &k, cost, now, &res);
	if (res.verdict == LIMIT_RATE || res.verdict == LIMIT_BANNED)
		climit_log_refusal(&k, res.verdict, res.retry_after);
	if (res.banned_now)
		climit_log_ban(&k, &res);
	if (res.block) {
		a->block = 1;
		a->banned = res.verdict == LIMIT_BANNED;
		a->close = a->banned;
		a->retry_after = res.retry_after;
		a->contact = cw.cl->contact;
		return 1;
	}
	if (res.verdict != LIMIT_BANNED && r->status >= 400 && r->status < 500) {
		limit_finish(&cw.l, &k, r->status, cost, path, plen, now, &res);
		if (res.banned_now)
			climit_log_ban(&k, &res);
	}
	return 0;
}
