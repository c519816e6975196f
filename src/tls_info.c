/*
 * tls_info.c - what a loaded certificate says (see tls.h): subject,
 * names, key type, expiry, the warnings they call for, and the one
 * line the master logs for it.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "porter.h"
#include "tls_int.h"

void
tls_info_fill(struct tls_cert_info *in, X509 *leaf)
{
	GENERAL_NAMES *gens;
	EVP_PKEY *pk = X509_get0_pubkey(leaf);
	struct tm tm;
	time_t now = time(NULL), left;
	size_t n = 0;
	BIO *b;
	int i, len, full = 0;

	if ((b = BIO_new(BIO_s_mem())) != NULL) {
		X509_NAME_print_ex(b, X509_get_subject_name(leaf), 0, XN_FLAG_RFC2253);
		len = BIO_read(b, in->subject, (int)sizeof(in->subject) - 1);
		in->subject[len > 0 ? len : 0] = '\0';
		BIO_free(b);
	}
	gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		int l;

		if (g->type != GEN_DNS)
			continue;
		l = ASN1_STRING_length(g->d.dNSName);
		/* The first names that fit, then "...", room for which is kept. */
		if (!full && n + (size_t)l + 2 + 5 < sizeof(in->names))
			n += (size_t)snprintf(in->names + n, sizeof(in->names) - n, "%s%.*s",
			    in->nnames ? ", " : "", l,
			    (const char *)ASN1_STRING_get0_data(g->d.dNSName));
		else if (!full) {
			snprintf(in->names + n, sizeof(in->names) - n, "%s...",
			    in->nnames ? ", " : "");
			full = 1;
		}
		in->nnames++;
	}
	GENERAL_NAMES_free(gens);

	if (pk != NULL && EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC) {
		char group[32] = "";
		const char *nist = NULL;

		if (EVP_PKEY_get_group_name(pk, group, sizeof(group), NULL))
			nist = EC_curve_nid2nist(OBJ_sn2nid(group));
		snprintf(in->key_type, sizeof(in->key_type), "ECDSA %s",
		    nist ? nist : group);
	} else if (pk != NULL && EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
		snprintf(in->key_type, sizeof(in->key_type), "RSA %d", EVP_PKEY_get_bits(pk));
	} else if (pk != NULL) {
		snprintf(in->key_type, sizeof(in->key_type), "%s",
		    OBJ_nid2sn(EVP_PKEY_get_base_id(pk)));
	}

	if (ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &tm))
		in->not_after = timegm(&tm);
	left = in->not_after - now;
	in->days_left = left >= 0 ? (long)(left / 86400) : -(long)((-left + 86399) / 86400);
	if (left <= 0)
		in->warn |= TLS_WARN_EXPIRED;
	else if (in->days_left < TLS_WARN_DAYS)
		in->warn |= TLS_WARN_EXPIRING;
	if (ASN1_TIME_to_tm(X509_get0_notBefore(leaf), &tm) && timegm(&tm) > now)
		in->warn |= TLS_WARN_NOT_YET;
}

/* A site name the certificate does not cover is worth a warning, not a failure. */
void
tls_info_names(struct tls_cert_info *in, X509 *leaf, const struct conf_site *s)
{
	char probe[300];
	size_t j;

	for (j = 0; j < s->nnames && !(in->warn & TLS_WARN_NAME); j++) {
		const char *n = s->names[j];

		if (strcmp(n, "*") == 0)
			continue;
		/* A wildcard site must be covered for any one label. */
		snprintf(probe, sizeof(probe), "%s%s", n[0] == '*' ? "porter-check" : "",
		    n[0] == '*' ? n + 1 : n);
		if (X509_check_host(leaf, probe, 0, 0, NULL) != 1) {
			in->warn |= TLS_WARN_NAME;
			snprintf(in->uncovered, sizeof(in->uncovered), "%s", n);
		}
	}
}

int
tls_reused(const struct tls *t, size_t i)
{
	return i < t->ncerts ? t->certs[i].reused : 0;
}

size_t
tls_count(const struct tls *t)
{
	return t->ncerts;
}

const struct tls_cert_info *
tls_info(const struct tls *t, size_t i)
{
	return i < t->ncerts ? &t->certs[i].info : NULL;
}

int
tls_summary(const struct tls *t, size_t i, char *buf, size_t len)
{
	const struct tls_cert_info *in = tls_info(t, i);
	char date[32];
	struct tm tm;
	size_t n;

	if (in == NULL) {
		snprintf(buf, len, "no such certificate");
		return 0;
	}
	gmtime_r(&in->not_after, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", &tm);
	n = (size_t)snprintf(buf, len, "%s: %s, %zu name%s (%s), %s, ", in->certificate,
	    in->subject, in->nnames, in->nnames == 1 ? "" : "s",
	    in->nnames ? in->names : "none", in->key_type);
	if (n >= len)
		n = len - 1;
	if (in->warn & TLS_WARN_EXPIRED)
		n += (size_t)snprintf(buf + n, len - n, "EXPIRED %s (%ld day%s ago)",
		    date, -in->days_left, in->days_left == -1 ? "" : "s");
	else
		n += (size_t)snprintf(buf + n, len - n, "expires %s (%ld day%s left)",
		    date, in->days_left, in->days_left == 1 ? "" : "s");
	if (n < len && (in->warn & TLS_WARN_EXPIRING))
		n += (size_t)snprintf(buf + n, len - n, "; renew it soon");
	if (n < len && (in->warn & TLS_WARN_NOT_YET))
		n += (size_t)snprintf(buf + n, len - n, "; not valid yet");
	if (n < len && (in->warn & TLS_WARN_NO_CHAIN))
		n += (size_t)snprintf(buf + n, len - n,
		    "; no intermediate certificate in the file");
	if (n < len && (in->warn & TLS_WARN_NAME))
		snprintf(buf + n, len - n, "; does not cover site name %s", in->uncovered);
	if (in->warn & TLS_WARN_EXPIRED)
		return 2;
	return in->warn ? 1 : 0;
}
