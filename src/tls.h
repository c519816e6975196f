/*
 * tls.h - TLS for one generation: one context with the profile applied,
 * certificates and keys loaded and checked, and the callbacks every
 * handshake uses (SNI, ALPN, session tickets). Master side: built
 * after conf_load() and before any worker of the generation forks;
 * workers only use what they inherit. Nothing here touches a socket or
 * the event loop (that is the TLS transport's job).
 *
 * Only this header is needed to build and free a generation's TLS; it
 * declares OpenSSL's SSL_CTX and X509 as incomplete structs so callers
 * need not include OpenSSL. Needs OpenSSL >= 3.0.
 *
 * Protocols (RFC 8446 TLS 1.3, RFC 5246 TLS 1.2): 1.2 and 1.3 only.
 *   profile "intermediate" (default): TLS 1.2 + 1.3; TLS 1.2 suites are
 *     the six ECDHE AEAD suites of Mozilla's intermediate profile (no
 *     DHE, so no dhparam file), TLS 1.3 suites AES-128-GCM, AES-256-GCM,
 *     ChaCha20-Poly1305; groups X25519:P-256:P-384.
 *   profile "modern": TLS 1.3 only, same suites and groups.
 *   Both: server order with ChaCha20 preferred by clients that prefer
 *   it, no renegotiation (RFC 5746 moot), no compression, no 0-RTT
 *   (RFC 8446 2.3: replayable), one ticket per handshake, no
 *   server-side session cache (tickets carry the state).
 *
 * Errors: functions that can fail return NULL or -1 and write one line
 * into err, naming the file or the setting and OpenSSL's reason
 * ("certificate /etc/x.pem: no certificate found (PEM routines::no
 * start line)"); the caller prefixes "file:line: " for config errors.
 */
#ifndef PORTER_TLS_H
#define PORTER_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct conf;
struct ssl_ctx_st;	/* OpenSSL's SSL_CTX */
struct x509_st;		/* OpenSSL's X509 */

/* Protocol bits for tls_opts.protocols. */
#define TLS_PROTO_TLS12		0x01
#define TLS_PROTO_TLS13		0x02

enum tls_profile {
	TLS_PROFILE_INTERMEDIATE = 0,
	TLS_PROFILE_MODERN
};

/* ---- session ticket keys (RFC 5077, RFC 8446 4.6.1) ----------------------- */

#define TLS_TICKET_SLOTS	4

/*
 * One ticket key: the 16-byte name sent in the clear in every ticket,
 * HMAC-SHA256 and AES-256-CBC keys (RFC 5077 4's recommended format).
 * Times are seconds on the clock the master passes to
 * tls_ticket_rotate() (tls_clock() in porter).
 */
struct tls_ticket_key {
	unsigned char	 name[16];
	unsigned char	 hmac[32];
	unsigned char	 aes[32];
	int64_t		 start;		/* began encrypting */
	int64_t		 end;		/* stopped encrypting; 0 while current */
	int		 used;		/* 0: slot never filled */
};

/*
 * The key ring. It lives in memory the caller provides and keeps: in
 * porter, a MAP_SHARED page the master makes before the first fork and
 * keeps across reloads, so a ticket issued by any worker of any
 * generation resumes on any other. Plain data, no pointers: it may be
 * copied or shared as it is.
 *
 * Only the master writes (tls_ticket_init, tls_ticket_rotate); workers
 * read from the handshake callback. seq is a sequence lock: odd while
 * the master writes, so a reader that saw it change or odd reads again
 * and never uses a half-written key.
 *
 * The current key encrypts for lifetime/2 seconds, then the next one
 * takes over; a key decrypts until lifetime seconds after it stopped
 * encrypting. So every ticket is accepted for at least lifetime seconds
 * on this clock, and at most 1.5 lifetime; OpenSSL also refuses a
 * session older than lifetime seconds by the wall clock
 * (SSL_CTX_set_timeout), which makes the bound exact. Four slots cover
 * the 1.5 lifetime a retired key must stay readable, plus the current.
 */
struct tls_ticket_keys {
	unsigned	 seq;		/* sequence lock, see above */
	unsigned	 current;	/* index into slot */
	int64_t		 lifetime;	/* seconds, > 1 */
	struct tls_ticket_key slot[TLS_TICKET_SLOTS];
};

/* Seconds since boot, suspend included (CLOCK_BOOTTIME): the ring's clock. */
time_t	 tls_clock(void);
/*
 * Fill keys (caller's memory, zeroed or not) with one fresh current key
 * starting at now. lifetime: seconds a ticket stays usable, >= 2.
 * Returns 0, or -1 when lifetime is out of range or the random
 * generator fails (nothing usable then).
 */
int	 tls_ticket_init(struct tls_ticket_keys *keys, int64_t lifetime,
	    time_t now);
/*
 * The master's tick: when the current key has encrypted for lifetime/2
 * seconds (or the clock went backwards), a fresh key becomes current.
 * Cheap when nothing is due; call it every second or every few.
 * Returns 1 rotated, 0 nothing due, -1 the random generator failed
 * (the old key stays current; try again on the next tick).
 */
int	 tls_ticket_rotate(struct tls_ticket_keys *keys, time_t now);
/*
 * Reader side, as the handshake callback uses it. tls_ticket_current()
 * copies the key to encrypt with into *out: 0, or -1 when there is
 * none. tls_ticket_find() copies the key named name into *out: 1 the
 * current key, 2 an older key still valid (decrypt, then issue a fresh
 * ticket), 0 unknown or expired (full handshake).
 */
int	 tls_ticket_current(const struct tls_ticket_keys *keys,
	    struct tls_ticket_key *out);
int	 tls_ticket_find(const struct tls_ticket_keys *keys,
	    const unsigned char name[16], time_t now,
	    struct tls_ticket_key *out);

/* ---- contexts --------------------------------------------------------------- */

/* One site's certificate: conf->sites[i] uses sites[i]. */
struct tls_site {
	const char	*certificate;	/* PEM: leaf first, then intermediates;
					 * NULL: this site has no certificate */
	const char	*key;		/* PEM private key, unencrypted */
	const char	*origin;	/* "file:line" that named them, put in
					 * front of errors; NULL: none */
};

struct tls_opts {
	enum tls_profile profile;
	unsigned	 protocols;	/* TLS_PROTO_*; 0: the profile's */
	const char	*ciphers;	/* TLS 1.2 list, OpenSSL syntax; NULL: profile */
	const char	*ciphersuites;	/* TLS 1.3 list; NULL: profile */
	const char	*groups;	/* NULL: "X25519:P-256:P-384" */
	int		 ktls;		/* try kernel TLS (SSL_OP_ENABLE_KTLS) */
	/*
	 * Ticket keys, borrowed: must outlive the context. NULL: no
	 * tickets, so no resumption (there is no session cache).
	 */
	const struct tls_ticket_keys *keys;
	/* The ring's clock for the callback; NULL: tls_clock. Tests inject one. */
	time_t		(*clock)(void);
	/*
	 * The serving generation's, or NULL: a certificate of it whose
	 * certificate and key files are unchanged (same path, inode, size
	 * and modification time) is shared (references to its leaf, chain
	 * and key) instead of read and checked again. Borrowed during
	 * tls_new().
	 */
	const struct tls *reuse;
};

/* What was loaded, for the logs and porter -t. */
#define TLS_WARN_EXPIRING	0x01	/* fewer than TLS_WARN_DAYS days left */
#define TLS_WARN_EXPIRED	0x02	/* notAfter passed: served anyway */
#define TLS_WARN_NOT_YET	0x04	/* notBefore in the future */
#define TLS_WARN_NO_CHAIN	0x08	/* leaf only, not self-signed: clients
					 * that do not fetch intermediates fail */
#define TLS_WARN_NAME		0x10	/* a site name the certificate does not cover */
#define TLS_WARN_DAYS		14

struct tls_cert_info {
	const char	*certificate;	/* the path, borrowed from tls_site */
	char		 subject[256];	/* RFC 2253 one-line form */
	char		 names[256];	/* SAN DNS names, ", "-separated, may end in "..." */
	size_t		 nnames;	/* SAN DNS entries */
	char		 key_type[48];	/* "ECDSA P-256", "RSA 2048" */
	time_t		 not_after;	/* seconds since the epoch */
	long		 days_left;	/* whole days; negative once expired */
	unsigned	 warn;		/* TLS_WARN_* */
	char		 uncovered[64];	/* the first name behind TLS_WARN_NAME */
};

/* A generation's context and certificates; opaque. */
struct tls;

/*
 * Build the generation's one SSL_CTX (the settings, the callbacks and
 * the default site's certificate) and load each distinct (certificate,
 * key) pair of sites[] (conf->nsites entries) once; the SNI callback
 * puts a site's certificate on the SSL. Every file is read now:
 * a missing or unreadable file, a key that does not match (or is
 * encrypted), a chain whose certificates do not lead from the leaf to
 * the last one in the file, a certificate not usable by a TLS server,
 * a bad protocol, cipher, suite or group is an error, and nothing is
 * kept. An expired certificate is not an error (refusing it would stop
 * plain HTTP too, and with it the ACME challenge that renews it): its
 * info says so. conf is borrowed for SNI matching and must outlive the
 * result; so must opts->keys. At least one site must have a
 * certificate. Returns NULL with err filled on failure.
 */
struct tls	*tls_new(const struct conf *conf, const struct tls_site *sites,
		    const struct tls_opts *opts, char *err, size_t errlen);
/* Frees the context and the certificates; NULL is fine. Connections
 * holding an SSL keep what they use alive by OpenSSL's reference counts. */
void		 tls_free(struct tls *t);

/*
 * The context every connection starts with; it carries the default
 * site's certificate, or the first site's that has one. Borrowed.
 */
struct ssl_ctx_st *tls_default_ctx(const struct tls *t);
/*
 * The leaf certificate the SNI callback serves for name (RFC 6066 3;
 * the same matcher as Host: http_site_match()); NULL name, an unknown
 * name or a site without a certificate give the default. Sites sharing
 * a pair share the object, so pointers compare. Borrowed.
 */
struct x509_st	*tls_cert_for_name(const struct tls *t, const char *name);

/* The distinct certificates loaded, and what each holds. */
size_t		 tls_count(const struct tls *t);
/* 1 when certificate i was taken from tls_opts.reuse. */
int		 tls_reused(const struct tls *t, size_t i);
const struct tls_cert_info *tls_info(const struct tls *t, size_t i);
/*
 * One log line for certificate i into buf (always terminated):
 * "/etc/x.pem: CN=example.org, 2 names (example.org, www.example.org),
 * ECDSA P-256, expires 2027-03-01 (89 days left)" plus the warnings.
 * Returns 0 (notice), 1 (warning: expiring soon, no chain, uncovered
 * name, not yet valid) or 2 (expired: log as an error).
 */
int		 tls_summary(const struct tls *t, size_t i, char *buf, size_t len);

/*
 * Check the settings of opts that OpenSSL interprets (protocols,
 * ciphers, ciphersuites, groups) without any certificate: 0, or -1 with
 * err starting with the setting's name ("ciphers \"FOO\": matches no
 * TLS 1.2 cipher (...)").
 */
int		 tls_opts_check(const struct tls_opts *opts, char *err,
		    size_t errlen);

/* ---- ALPN (RFC 7301) per listener ------------------------------------------ */

#define TLS_ALPN_MAX	64	/* bytes of the wire-format list */

/*
 * What a TLS listener offers: the generation's TLS and the
 * application protocols it speaks, in the server's order of preference,
 * in ALPN wire format (length-prefixed names). The transport attaches
 * it to every SSL it makes on that listener (SSL_set_app_data), and the
 * ALPN callback reads it from there, so listeners that share the
 * generation's context may still speak different protocols.
 */
struct tls_listen {
	struct tls	*tls;
	unsigned char	 alpn[TLS_ALPN_MAX];
	size_t		 alpn_len;
};

/*
 * Fill tl for the generation's TLS t and the protocols protos[0..n) (names as in
 * the ALPN registry: "h2", "http/1.1"), most preferred first; n == 0
 * means { "http/1.1" }. Returns 0, or -1 when a name is empty, longer
 * than 255 bytes, or the list does not fit TLS_ALPN_MAX.
 */
int		 tls_listen_init(struct tls_listen *tl, struct tls *t,
		    const char *const *protos, size_t n);
/*
 * The ALPN choice, in one place: the first protocol of the server's
 * list (prefs, wire format) that the client offered (offer, wire format
 * as in the ClientHello). 1 with *out and *outlen pointing into offer, or 0
 * when nothing matches (the handshake then goes on without ALPN, as
 * RFC 7301 3.2 allows; such a client may still speak HTTP/1.1) or the
 * offer is malformed.
 */
int		 tls_alpn_select(const unsigned char *prefs, size_t plen,
		    const unsigned char *offer, size_t olen,
		    const unsigned char **out, unsigned char *outlen);

/*
 * A protocol name as written in the configuration ("TLSv1.2",
 * "TLSv1.3") to its TLS_PROTO_* bit; 0 for anything else (older
 * versions are not supported).
 */
unsigned	 tls_protocol(const char *name);

#endif
