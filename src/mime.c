/*
 * mime.c - Content-Type by file name extension, and what the extension
 * says about the bytes' coding (".svgz" is gzip-coded SVG, ".gz" is
 * compressed data served as itself).
 *
 * The table is an array of (extension, header value) sorted by
 * extension, bisected on every response: no hashing, no allocation.
 * A built-in table serves until mime_load() succeeds, and again after
 * mime_free().
 */

#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "porter.h"

#define MIME_DEFAULT	"application/octet-stream"
#define MIME_UTF8	"; charset=utf-8"

#ifndef nitems
#define nitems(a)	(sizeof(a) / sizeof((a)[0]))
#endif

struct mime_ent {
	const char	*ext;	/* lower case, without the dot */
	const char	*type;	/* the whole header value */
};

/*
 * Used while /etc/mime.types is missing or unreadable. Must stay in
 * strcmp() order: mime_type() bisects it. The values agree with
 * Debian's media-types where it has the extension.
 */
static const struct mime_ent mime_builtin[] = {
	{ "apng",	"image/apng" },
	{ "atom",	"application/atom+xml" },
	{ "avif",	"image/avif" },
	{ "bmp",	"image/bmp" },
	{ "br",		"application/x-brotli" },
	{ "css",	"text/css" MIME_UTF8 },
	{ "csv",	"text/csv" MIME_UTF8 },
	{ "eot",	"application/vnd.ms-fontobject" },
	{ "flac",	"audio/flac" },
	{ "gif",	"image/gif" },
	{ "gz",		"application/gzip" },
	{ "htm",	"text/html" MIME_UTF8 },
	{ "html",	"text/html" MIME_UTF8 },
	{ "ico",	"image/vnd.microsoft.icon" },
	{ "ics",	"text/calendar" MIME_UTF8 },
	{ "jpeg",	"image/jpeg" },
	{ "jpg",	"image/jpeg" },
	{ "js",		"text/javascript" MIME_UTF8 },
	{ "json",	"application/json" MIME_UTF8 },
	{ "jsonld",	"application/ld+json" },
	{ "m4a",	"audio/mp4" },
	{ "map",	"application/json" MIME_UTF8 },	/* source maps */
	{ "md",		"text/markdown" MIME_UTF8 },
	{ "mjs",	"text/javascript" MIME_UTF8 },
	{ "mov",	"video/quicktime" },
	{ "mp3",	"audio/mpeg" },
	{ "mp4",	"video/mp4" },
	{ "mpeg",	"video/mpeg" },
	{ "mpg",	"video/mpeg" },
	{ "oga",	"audio/ogg" },
	{ "ogg",	"audio/ogg" },
	{ "ogv",	"video/ogg" },
	{ "opus",	"audio/ogg" },
	{ "otf",	"font/otf" },
	{ "pdf",	"application/pdf" },
	{ "png",	"image/png" },
	{ "rss",	"application/rss+xml" },
	{ "svg",	"image/svg+xml" },
	{ "svgz",	"image/svg+xml" },	/* and Content-Encoding: gzip */
	{ "tar",	"application/x-tar" },
	{ "tgz",	"application/x-gtar-compressed" },
	{ "tif",	"image/tiff" },
	{ "tiff",	"image/tiff" },
	{ "ttf",	"font/ttf" },
	{ "txt",	"text/plain" MIME_UTF8 },
	{ "wasm",	"application/wasm" },
	{ "wav",	"audio/wav" },
	{ "webm",	"video/webm" },
	{ "webmanifest", "application/manifest+json" MIME_UTF8 },
	{ "webp",	"image/webp" },
	{ "woff",	"font/woff" },
	{ "woff2",	"font/woff2" },
	{ "xhtml",	"application/xhtml+xml" },
	{ "xml",	"application/xml" MIME_UTF8 },
	{ "zip",	"application/zip" },
	{ "zst",	"application/zstd" },
};

/*
 * Extensions that say how the bytes are coded (mime_coding()), in
 * strcmp() order. Apart from the table in use: a mime.types cannot
 * change what ".svgz" means for Content-Encoding.
 */
static const struct mime_coding_ent {
	const char	*ext;
	int		 coding;
} mime_codings[] = {
	{ "7z",		MIME_CODING_PACKED },
	{ "br",		MIME_CODING_PACKED },
	{ "bz2",	MIME_CODING_PACKED },
	{ "gz",		MIME_CODING_PACKED },
	{ "lz",		MIME_CODING_PACKED },
	{ "lz4",	MIME_CODING_PACKED },
	{ "lzma",	MIME_CODING_PACKED },
	{ "rar",	MIME_CODING_PACKED },
	{ "svgz",	MIME_CODING_GZIP },
	{ "tbz",	MIME_CODING_PACKED },
	{ "tbz2",	MIME_CODING_PACKED },
	{ "tgz",	MIME_CODING_PACKED },
	{ "txz",	MIME_CODING_PACKED },
	{ "tzst",	MIME_CODING_PACKED },
	{ "xz",		MIME_CODING_PACKED },
	{ "z",		MIME_CODING_PACKED },
	{ "zip",	MIME_CODING_PACKED },
	{ "zst",	MIME_CODING_PACKED },
};

/* Non-text types whose content we still serve as UTF-8. */
static const char *const mime_utf8_types[] = {
	"application/javascript",
	"application/json",
	"application/manifest+json",
	"application/xml",
};

static const struct mime_ent	*mime_tab = mime_builtin;
static size_t			 mime_ntab = nitems(mime_builtin);
static struct mime_ent		*mime_loaded;	/* NULL: built-in in use */
static char			*mime_strings;	/* owns mime_loaded's strings */

/* A table being read: strings live in one buffer, so offsets, not pointers. */
struct mime_new {
	char		*str;
	size_t		 len;
	size_t		 cap;
	struct mime_slot {
		size_t	 ext;
		size_t	 type;
	}		*slot;		/* in file order */
	size_t		 nslot;
	size_t		 slotcap;
};

struct mime_sort {
	struct mime_ent	 ent;
	size_t		 seq;		/* file order: the last one wins */
};

static int	mime_lower(int);
static int	mime_cmp(const char *, size_t, const char *);
static int	mime_is_utf8(const char *, size_t);
static int	mime_istchar(int);
static int	mime_isspace(int);
static size_t	mime_add(struct mime_new *, const char *, size_t, int, int);
static int	mime_slot(struct mime_new *, size_t, size_t);
static int	mime_line(struct mime_new *, char *, size_t, const char **);
static int	mime_sortcmp(const void *, const void *);
static int	mime_finish(struct mime_new *, struct mime_ent **, size_t *);

/* ASCII only: the locale must not change what an extension means. */
static int
mime_lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* Compare a key of any case with a lower-case table extension. */
static int
mime_cmp(const char *key, size_t keylen, const char *ext)
{
	const unsigned char	*e = (const unsigned char *)ext;
	size_t			 i;
	int			 c;

	for (i = 0; i < keylen; i++) {
		if (e[i] == '\0')
			return 1;
		c = mime_lower((unsigned char)key[i]);
		if (c != e[i])
			return c - e[i];
	}
	return e[i] == '\0' ? 0 : -1;
}

/*
 * The extension: after the last dot of the last segment, unless that
 * dot starts the name. NULL when there is none.
 */
static const char *
mime_ext(const char *path, size_t len, size_t *extlen)
{
	size_t		 i;

	for (i = len; i > 0; i--)
		if (path[i - 1] == '.' || path[i - 1] == '/')
			break;
	if (i < 2 || path[i - 1] != '.' || path[i - 2] == '/' || i == len)
		return NULL;
	*extlen = len - i;
	return path + i;
}

const char *
mime_type(const char *path, size_t len)
{
	const char	*ext;
	size_t		 lo, hi, mid, extlen;
	int		 r;

	if ((ext = mime_ext(path, len, &extlen)) == NULL)
		return MIME_DEFAULT;

	lo = 0;
	hi = mime_ntab;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		r = mime_cmp(ext, extlen, mime_tab[mid].ext);
		if (r == 0)
			return mime_tab[mid].type;
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return MIME_DEFAULT;
}

int
mime_coding(const char *path, size_t len)
{
	const char	*ext;
	size_t		 lo, hi, mid, extlen;
	int		 r;

	if ((ext = mime_ext(path, len, &extlen)) == NULL)
		return MIME_CODING_NONE;
	lo = 0;
	hi = nitems(mime_codings);
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		r = mime_cmp(ext, extlen, mime_codings[mid].ext);
		if (r == 0)
			return mime_codings[mid].coding;
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return MIME_CODING_NONE;
}

static int
mime_is_utf8(const char *type, size_t len)
{
	size_t	 i;

	if (len > 5 && strncasecmp(type, "text/", 5) == 0)
		return 1;
	for (i = 0; i < nitems(mime_utf8_types); i++)
		if (strlen(mime_utf8_types[i]) == len &&
		    strncasecmp(type, mime_utf8_types[i], len) == 0)
			return 1;
	return 0;
}

/* RFC 9110 tchar: what a media type and subtype are made of. */
static int
mime_istchar(int c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int
mime_isspace(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
	    c == '\v' || c == '\f';
}

/*
 * Append s (lowered if asked, "; charset=utf-8" if asked) and a NUL
 * to the string buffer. Returns its offset, or SIZE_MAX without memory.
 */
static size_t
mime_add(struct mime_new *nw, const char *s, size_t len, int lower, int utf8)
{
	size_t	 need, off, i;
	char	*p;

	need = len + (utf8 ? sizeof(MIME_UTF8) - 1 : 0) + 1;
	if (nw->cap - nw->len < need) {
		size_t	 cap = nw->cap ? nw->cap : 4096;

		while (cap - nw->len < need)
			cap *= 2;
		if ((p = realloc(nw->str, cap)) == NULL)
			return SIZE_MAX;
		nw->str = p;
		nw->cap = cap;
	}
	off = nw->len;
	p = nw->str + off;
	for (i = 0; i < len; i++)
		*p++ = lower ? mime_lower((unsigned char)s[i]) : s[i];
	if (utf8) {
		memcpy(p, MIME_UTF8, sizeof(MIME_UTF8) - 1);
		p += sizeof(MIME_UTF8) - 1;
	}
	*p = '\0';
	nw->len += need;
	return off;
}

static int
mime_slot(struct mime_new *nw, size_t ext, size_t type)
{
	struct mime_slot	*s;

	if (nw->nslot == nw->slotcap) {
		size_t	 cap = nw->slotcap ? nw->slotcap * 2 : 512;

		if ((s = reallocarray(nw->slot, cap, sizeof(*s))) == NULL)
			return -1;
		nw->slot = s;
		nw->slotcap = cap;
	}
	nw->slot[nw->nslot].ext = ext;
	nw->slot[nw->nslot].type = type;
	nw->nslot++;
	return 0;
}

/*
 * One line: "type/subtype ext1 ext2 ...", a word starting with '#'
 * ends it. Returns 0, or -1 with *why set.
 */
static int
mime_line(struct mime_new *nw, char *line, size_t len, const char **why)
{
	const char	*type = NULL, *w;
	size_t		 typelen = 0, wlen, typeoff = SIZE_MAX, extoff, i, j;
	int		 slash;

	for (i = 0; i < len; ) {
		if (mime_isspace(line[i])) {
			i++;
			continue;
		}
		w = line + i;
		for (j = i; j < len && !mime_isspace(line[j]); j++)
			;
		wlen = j - i;
		i = j;
		if (w[0] == '#')
			break;

		if (type == NULL) {
			slash = 0;
			for (j = 0; j < wlen; j++) {
				if (w[j] == '/' && j > 0 && j + 1 < wlen &&
				    !slash)
					slash = 1;
				else if (!mime_istchar((unsigned char)w[j]))
					break;
			}
			if (j < wlen || !slash) {
				*why = "bad media type";
				return -1;
			}
			type = w;
			typelen = wlen;
			continue;
		}

		for (j = 0; j < wlen; j++)
			if ((unsigned char)w[j] <= ' ' || w[j] == '/' ||
			    w[j] == 0x7f)
				break;
		if (j < wlen) {
			*why = "bad extension";
			return -1;
		}
		/* mime_type() looks after the last dot: "tar.gz" never matches. */
		if (memchr(w, '.', wlen) != NULL)
			continue;

		if (typeoff == SIZE_MAX &&
		    (typeoff = mime_add(nw, type, typelen, 0,
		    mime_is_utf8(type, typelen))) == SIZE_MAX)
			goto nomem;
		if ((extoff = mime_add(nw, w, wlen, 1, 0)) == SIZE_MAX ||
		    mime_slot(nw, extoff, typeoff) == -1)
			goto nomem;
	}
	return 0;

 nomem:
	*why = strerror(ENOMEM);
	return -1;
}

static int
mime_sortcmp(const void *a, const void *b)
{
	const struct mime_sort	*x = a, *y = b;
	int			 r;

	if ((r = strcmp(x->ent.ext, y->ent.ext)) != 0)
		return r;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Sort the slots into a table; a repeated extension keeps its last type. */
static int
mime_finish(struct mime_new *nw, struct mime_ent **tabp, size_t *ntabp)
{
	struct mime_sort	*srt;
	struct mime_ent		*tab;
	size_t			 i, n;

	if ((srt = calloc(nw->nslot ? nw->nslot : 1, sizeof(*srt))) == NULL)
		return -1;
	if ((tab = calloc(nw->nslot ? nw->nslot : 1, sizeof(*tab))) == NULL) {
		free(srt);
		return -1;
	}
	for (i = 0; i < nw->nslot; i++) {
		srt[i].ent.ext = nw->str + nw->slot[i].ext;
		srt[i].ent.type = nw->str + nw->slot[i].type;
		srt[i].seq = i;
	}
	qsort(srt, nw->nslot, sizeof(*srt), mime_sortcmp);
	for (i = n = 0; i < nw->nslot; i++) {
		if (i + 1 < nw->nslot &&
		    strcmp(srt[i].ent.ext, srt[i + 1].ent.ext) == 0)
			continue;
		tab[n++] = srt[i].ent;
	}
	free(srt);
	*tabp = tab;
	*ntabp = n;
	return 0;
}

int
mime_load(const char *path, char *err, size_t errlen)
{
	struct mime_new	 nw;
	struct mime_ent	*tab = NULL;
	FILE		*fp;
	char		*line = NULL;
	const char	*why = NULL;
	size_t		 linesz = 0, lineno = 0, ntab = 0;
	ssize_t		 n;

	memset(&nw, 0, sizeof(nw));
	if ((fp = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while ((n = getline(&line, &linesz, fp)) != -1) {
		lineno++;
		if (mime_line(&nw, line, (size_t)n, &why) == -1)
			break;
	}
	if (why == NULL && ferror(fp)) {
		why = strerror(errno ? errno : EIO);
		lineno = 0;
	}
	free(line);
	fclose(fp);
	if (why == NULL && mime_finish(&nw, &tab, &ntab) == -1)
		why = strerror(ENOMEM);
	/* An empty table would make every file a download: a truncated file? */
	if (why == NULL && ntab == 0) {
		why = "no extensions";
		lineno = 0;
	}
	free(nw.slot);

	/* A bad file leaves the table in use untouched. */
	if (why != NULL) {
		if (lineno > 0)
			snprintf(err, errlen, "%s:%zu: %s", path, lineno, why);
		else
			snprintf(err, errlen, "%s: %s", path, why);
		free(tab);
		free(nw.str);
		return -1;
	}

	mime_free();
	mime_loaded = tab;
	mime_strings = nw.str;
	mime_tab = tab;
	mime_ntab = ntab;
	return 0;
}

void
mime_free(void)
{
	free(mime_loaded);
	free(mime_strings);
	mime_loaded = NULL;
	mime_strings = NULL;
	mime_tab = mime_builtin;
	mime_ntab = nitems(mime_builtin);
}
