/*
 * encoding.c - Accept-Encoding negotiation (RFC 9110 12.5.3), which
 * content types are worth compressing, and the percent-encoding
 * (RFC 3986 2.1) of the URI references porter writes. Pure functions.
 */
#include <string.h>
#include <strings.h>

#include "http_chars.h"
#include "rep.h"

/* q-values are kept in thousandths: "0.5" is 500. */
#define ENCODING_Q_MAX		1000
/* identity allowed only because nothing excluded it: below any listed
 * coding with a real q-value except a tie at q=0.001. */
#define ENCODING_Q_DEFAULT	1

/* Server preference, best first. */
static const int encoding_order[] = {
	ENCODING_BR, ENCODING_ZSTD, ENCODING_GZIP, ENCODING_IDENTITY
};
#define ENCODING_NORDER	(sizeof(encoding_order) / sizeof(encoding_order[0]))

enum {
	ENCODING_SLOT_BR,
	ENCODING_SLOT_ZSTD,
	ENCODING_SLOT_GZIP,
	ENCODING_SLOT_IDENTITY,
	ENCODING_SLOT_STAR,
	ENCODING_NSLOTS
};

struct encoding_pref {
	int	 seen;
	int	 q;
};

static int
encoding_is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static int
encoding_is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int
encoding_eq(const char *p, size_t len, const char *s)
{
	return strlen(s) == len && strncasecmp(p, s, len) == 0;
}

/*
 * qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
 * Returns thousandths, or -1.
 */
static int
encoding_qvalue(const char *p, size_t len)
{
	size_t	 i;
	int	 q, scale = 100;

	if (len == 0 || (p[0] != '0' && p[0] != '1'))
		return -1;
	q = (p[0] - '0') * ENCODING_Q_MAX;
	if (len == 1)
		return q;
	if (p[1] != '.' || len > 5)
		return -1;
	for (i = 2; i < len; i++, scale /= 10) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		q += (p[i] - '0') * scale;
	}
	return q > ENCODING_Q_MAX ? -1 : q;
}

/*
 * One list element: coding [ OWS ";" OWS "q=" qvalue ]. Returns the
 * slot it names (-1 for a coding we do not produce) and its q, or -2
 * if it does not parse.
 */
static int
encoding_element(const char *p, size_t len, int *q)
{
	size_t	 i = 0, tok;
	int	 slot;

	while (i < len && encoding_is_tchar((unsigned char)p[i]))
		i++;
	if (i == 0)
		return -2;
	tok = i;
	*q = ENCODING_Q_MAX;

	while (i < len && encoding_is_ows(p[i]))
		i++;
	if (i < len) {
		if (p[i++] != ';')
			return -2;
		while (i < len && encoding_is_ows(p[i]))
			i++;
		/* The only parameter Accept-Encoding has is the weight;
		 * parameter names are case-insensitive. */
		if (len - i < 2 || (p[i] != 'q' && p[i] != 'Q') ||
		    p[i + 1] != '=')
			return -2;
		i += 2;
		if ((*q = encoding_qvalue(p + i, len - i)) == -1)
			return -2;
	}

	if (encoding_eq(p, tok, "br"))
		slot = ENCODING_SLOT_BR;
	else if (encoding_eq(p, tok, "zstd"))
		slot = ENCODING_SLOT_ZSTD;
	else if (encoding_eq(p, tok, "gzip") || encoding_eq(p, tok, "x-gzip"))
		slot = ENCODING_SLOT_GZIP;
	else if (encoding_eq(p, tok, "identity"))
		slot = ENCODING_SLOT_IDENTITY;
	else if (encoding_eq(p, tok, "*"))
		slot = ENCODING_SLOT_STAR;
	else
		slot = -1;
	return slot;
}

static int
encoding_slot(int coding)
{
	switch (coding) {
	case ENCODING_BR:
		return ENCODING_SLOT_BR;
	case ENCODING_ZSTD:
		return ENCODING_SLOT_ZSTD;
	case ENCODING_GZIP:
		return ENCODING_SLOT_GZIP;
	default:
		return ENCODING_SLOT_IDENTITY;
	}
}

int
encoding_negotiate(const char *p, size_t len, int available)
{
	struct encoding_pref	 pref[ENCODING_NSLOTS];
	const struct encoding_pref *star = &pref[ENCODING_SLOT_STAR];
	size_t			 i, start, end, k;
	int			 slot, q, best = ENCODING_NONE_ACCEPTABLE;
	int			 bestq = 0;

	if (p != NULL) {
		while (len > 0 && encoding_is_ows(p[0])) {
			p++;
			len--;
		}
		while (len > 0 && encoding_is_ows(p[len - 1]))
			len--;
	}
	if (p == NULL || len == 0) {
		if (available & ENCODING_IDENTITY)
			return ENCODING_IDENTITY;
		/* No header at all allows any coding; an empty one asks
		 * for none. */
		if (p != NULL)
			return ENCODING_NONE_ACCEPTABLE;
		for (k = 0; k < ENCODING_NORDER; k++)
			if (available & encoding_order[k])
				return encoding_order[k];
		return ENCODING_NONE_ACCEPTABLE;
	}

	memset(pref, 0, sizeof(pref));
	for (i = 0; i < len; i = end + 1) {
		start = i;
		end = i;
		while (end < len && p[end] != ',')
			end++;
		while (start < end && encoding_is_ows(p[start]))
			start++;
		k = end;
		while (k > start && encoding_is_ows(p[k - 1]))
			k--;
		if (k == start)
			continue;	/* empty element */
		slot = encoding_element(p + start, k - start, &q);
		if (slot < 0 || pref[slot].seen)
			continue;
		pref[slot].seen = 1;
		pref[slot].q = q;
	}

	for (k = 0; k < ENCODING_NORDER; k++) {
		int	 c = encoding_order[k];

		if (!(available & c))
			continue;
		slot = encoding_slot(c);
		if (pref[slot].seen)
			q = pref[slot].q;
		else if (star->seen)
			q = star->q;
		else if (c == ENCODING_IDENTITY)
			q = ENCODING_Q_DEFAULT;
		else
			q = 0;
		/* Strictly greater: on a tie the earlier, preferred,
		 * coding stays. */
		if (q > bestq) {
			best = c;
			bestq = q;
		}
	}
	return best;
}

const char *
encoding_token(int coding)
{
	switch (coding) {
	case ENCODING_BR:
		return "br";
	case ENCODING_ZSTD:
		return "zstd";
	case ENCODING_GZIP:
		return "gzip";
	default:
		return NULL;
	}
}

const char *
encoding_suffix(int coding)
{
	switch (coding) {
	case ENCODING_BR:
		return ".br";
	case ENCODING_ZSTD:
		return ".zst";
	case ENCODING_GZIP:
		return ".gz";
	default:
		return NULL;
	}
}

int
encoding_type_compressible(const char *content_type, char *const *patterns,
    size_t npatterns)
{
	const char	*p = content_type, *slash, *pat;
	size_t		 len, plen, k;

	if (p == NULL)
		return 0;
	while (encoding_is_ows(*p))
		p++;
	len = strcspn(p, ";");
	while (len > 0 && encoding_is_ows(p[len - 1]))
		len--;
	if ((slash = memchr(p, '/', len)) == NULL)
		return 0;

	for (k = 0; k < npatterns; k++) {
		if ((pat = patterns[k]) == NULL)
			continue;
		plen = strlen(pat);
		if (strcmp(pat, "*/*") == 0)
			return 1;
		/* "type/" then "*": same type, any subtype */
		if (plen >= 2 && pat[plen - 1] == '*' && pat[plen - 2] == '/') {
			if ((size_t)(slash - p) == plen - 2 &&
			    strncasecmp(p, pat, plen - 2) == 0)
				return 1;
			continue;
		}
		if (plen == len && strncasecmp(p, pat, len) == 0)
			return 1;
	}
	return 0;
}

/* ---- percent-encoding for Location (RFC 3986) ------------------------ */

/* RFC 3986 2.3: the only bytes a path we write keeps as they are. */
static int
encoding_is_unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

/* Append one byte, or its "%XX", to out as far as outsz allows. */
static size_t
encoding_put(char *out, size_t outsz, size_t k, unsigned char c, int raw)
{
	static const char hex[] = "0123456789ABCDEF";

	if (raw) {
		if (k + 1 < outsz)
			out[k] = (char)c;
		return k + 1;
	}
	if (k + 3 < outsz) {
		out[k] = '%';
		out[k + 1] = hex[c >> 4];
		out[k + 2] = hex[c & 15];
	}
	return k + 3;
}

static size_t
encoding_end(char *out, size_t outsz, size_t k)
{
	if (outsz > 0)
		out[k < outsz ? k : outsz - 1] = '\0';
	return k;
}

size_t
encoding_uri_path(const char *p, size_t len, char *out, size_t outsz)
{
	size_t	 i = 0, k;

	/* Exactly one '/' first: "//host" would name another host. */
	k = encoding_put(out, outsz, 0, '/', 1);
	while (i < len && p[i] == '/')
		i++;
	for (; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		k = encoding_put(out, outsz, k, c, c == '/' ||
		    encoding_is_unreserved(c));
	}
	return encoding_end(out, outsz, k);
}

size_t
encoding_uri_query(const char *p, size_t len, char *out, size_t outsz)
{
	size_t	 i, k = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		int raw = encoding_is_unreserved(c) ||
		    (c != '\0' && strchr("!$&'()*+,;=:@/?", c) != NULL);

		/* An escape stays as sent; a lone '%' becomes "%25". */
		if (c == '%' && len - i >= 3 &&
		    http_hexval((unsigned char)p[i + 1]) != -1 &&
		    http_hexval((unsigned char)p[i + 2]) != -1)
			raw = 1;
		k = encoding_put(out, outsz, k, c, raw);
	}
	return encoding_end(out, outsz, k);
}
