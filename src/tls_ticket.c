/*
 * tls_ticket.c - the session-ticket key ring (see tls.h): made and
 * rotated by the master in memory it keeps across reloads, read by
 * the workers' handshakes under a sequence lock.
 */
#include <sched.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "tls_int.h"

/* ---- the ticket key ring ------------------------------------------------- */

time_t
tls_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return ts.tv_sec;
}

static void
tls_ticket_write_begin(struct tls_ticket_keys *k)
{
	__atomic_store_n(&k->seq, k->seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static void
tls_ticket_write_end(struct tls_ticket_keys *k)
{
	__atomic_store_n(&k->seq, k->seq + 1, __ATOMIC_RELEASE);
}

/* Fresh secret bytes for one key, made before the ring is locked. */
static int
tls_ticket_fill(struct tls_ticket_key *key, time_t now)
{
	memset(key, 0, sizeof(*key));
	if (RAND_bytes(key->name, sizeof(key->name)) != 1 ||
	    RAND_priv_bytes(key->hmac, sizeof(key->hmac)) != 1 ||
	    RAND_priv_bytes(key->aes, sizeof(key->aes)) != 1)
		return -1;
	key->start = now;
	key->used = 1;
	return 0;
}

int
tls_ticket_init(struct tls_ticket_keys *keys, int64_t lifetime, time_t now)
{
	struct tls_ticket_key key;
	int rc = -1;

	if (lifetime < 2 || lifetime > 7 * 86400)	/* RFC 8446 4.6.1: a week at most */
		goto fail;
	if (tls_ticket_fill(&key, now) == -1)
		goto fail;
	tls_ticket_write_begin(keys);
	memset(keys->slot, 0, sizeof(keys->slot));
	keys->slot[0] = key;
	keys->current = 0;
	keys->lifetime = lifetime;
	tls_ticket_write_end(keys);
	rc = 0;
fail:
	OPENSSL_cleanse(&key, sizeof(key));
	return rc;
}

int
tls_ticket_rotate(struct tls_ticket_keys *keys, time_t now)
{
	struct tls_ticket_key key;
	struct tls_ticket_key *cur = &keys->slot[keys->current];
	unsigned next = (keys->current + 1) % TLS_TICKET_SLOTS;

	/* Only the master writes, so it reads its own ring without the lock. */
	if (now >= cur->start && now - cur->start < keys->lifetime / 2)
		return 0;
	if (tls_ticket_fill(&key, now) == -1) {
		OPENSSL_cleanse(&key, sizeof(key));
		return -1;
	}
	tls_ticket_write_begin(keys);
	cur->end = now;
	keys->slot[next] = key;
	keys->current = next;
	tls_ticket_write_end(keys);
	OPENSSL_cleanse(&key, sizeof(key));
	return 1;
}

/*
 * The reader's side of the sequence lock: copy what is wanted, retry
 * if the master wrote meanwhile. A master stopped mid-write (it takes
 * nanoseconds, but a loaded machine may deschedule it) costs a few
 * yields; one that died mid-write must not hang the worker, so after a
 * bounded number of tries the answer is "no key" (a full handshake).
 */
#define TLS_SEQ_TRIES	2000

static int
tls_ticket_read(const struct tls_ticket_keys *keys, const unsigned char *name,
    time_t now, struct tls_ticket_key *out)
{
	unsigned s, i, cur, tries;
	int rc;

	for (tries = 0; tries < TLS_SEQ_TRIES; tries++) {
		if (tries > 16)
			sched_yield();
		s = __atomic_load_n(&keys->seq, __ATOMIC_ACQUIRE);
		if (s & 1)
			continue;
		cur = keys->current % TLS_TICKET_SLOTS;
		rc = 0;
		if (name == NULL) {
			*out = keys->slot[cur];
			rc = out->used ? 1 : 0;
		} else {
			for (i = 0; i < TLS_TICKET_SLOTS; i++) {
				const struct tls_ticket_key *k = &keys->slot[i];

				if (!k->used || memcmp(k->name, name, 16) != 0)
					continue;
				if (i == cur)
					rc = 1;
				else if (k->end != 0 && now < k->end + keys->lifetime)
					rc = 2;
				if (rc)
					*out = *k;
				break;
			}
		}
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&keys->seq, __ATOMIC_RELAXED) == s)
			return rc;
	}
	return 0;
}

int
tls_ticket_current(const struct tls_ticket_keys *keys, struct tls_ticket_key *out)
{
	return tls_ticket_read(keys, NULL, 0, out) == 1 ? 0 : -1;
}

int
tls_ticket_find(const struct tls_ticket_keys *keys, const unsigned char name[16],
    time_t now, struct tls_ticket_key *out)
{
	return tls_ticket_read(keys, name, now, out);
}
