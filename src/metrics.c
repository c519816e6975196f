/*
 * metrics.c - the Prometheus text exposition (format 0.0.4) of the
 * scoreboard's totals and the master's facts (see metrics.h).
 *
 * Rendering appends to the caller's buffer through one small writer that
 * remembers overflow, so a scrape allocates nothing and a short buffer
 * only ever gets a truncated, NUL-terminated prefix and an error.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "porter.h"
#include "metrics.h"

#define METRICS_FNV_PRIME	UINT64_C(0x100000001b3)

static const char *metrics_states[SB_NSTATE] = {
	NULL, "starting", "ready", "draining"
};
static const char *metrics_exits[SB_NEXIT] = {
	"crash", "hang", "max_requests", "drained"
};
static const char *metrics_reloads[SB_NRELOAD] = { "success", "failure" };
static const char *metrics_rejects[SB_NREJECT] = {
	"max_connections", "client_limit", "ban", "proxy"
};
static const char *metrics_proxy_errors[SB_NPROXY_ERR] = {
	"untrusted", "invalid", "timeout", "too_long"
};

size_t
metrics_escape(char *dst, size_t size, const char *src, int label)
{
	const char *rep;
	size_t n = 0, k;

	for (; *src != '\0'; src++) {
		switch (*src) {
		case '\\':
			rep = "\\\\";
			break;
		case '\n':
			rep = "\\n";
			break;
		case '"':
			rep = label ? "\\\"" : "\"";
			break;
		default:
			rep = NULL;
		}
		for (k = 0; k < (rep != NULL ? strlen(rep) : 1); k++, n++)
			if (n + 1 < size)
				dst[n] = rep != NULL ? rep[k] : *src;
	}
	if (size > 0)
		dst[n < size ? n : size - 1] = '\0';
	return n;
}

void
metrics_put(struct metrics_out *o, const char *fmt, ...)
{
	va_list ap;
	size_t room = o->len < o->size ? o->size - o->len : 0;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n;
}

/* s escaped, appended (as a label value, or HELP text). */
static void
metrics_put_escaped(struct metrics_out *o, const char *s, int label)
{
	size_t room = o->len < o->size ? o->size - o->len : 0;

	o->len += metrics_escape(room ? o->buf + o->len : NULL, room, s,
	    label);
}

void
metrics_family(struct metrics_out *o, const char *name, const char *type,
    const char *help)
{
	metrics_put(o, "# HELP %s ", name);
	metrics_put_escaped(o, help, 0);
	metrics_put(o, "\n# TYPE %s %s\n", name, type);
}

static void
metrics_sample(struct metrics_out *o, const char *name, uint64_t v)
{
	metrics_put(o, "%s %" PRIu64 "\n", name, v);
}

static void
metrics_labelled(struct metrics_out *o, const char *name, const char *label,
    const char *value, uint64_t v)
{
	metrics_put(o, "%s{%s=\"", name, label);
	metrics_put_escaped(o, value, 1);
	metrics_put(o, "\"} %" PRIu64 "\n", v);
}

/* ms as seconds in shortest decimal form: 1 -> "0.001", 2500 -> "2.5". */
static void
metrics_seconds(char *dst, size_t size, uint64_t ms)
{
	int n;

	n = snprintf(dst, size, "%" PRIu64 ".%03u", ms / 1000,
	    (unsigned)(ms % 1000));
	while (n > 0 && (size_t)n < size && dst[n - 1] == '0')
		dst[--n] = '\0';
	if (n > 0 && (size_t)n < size && dst[n - 1] == '.')
		dst[--n] = '\0';
}

static void
metrics_histogram(struct metrics_out *o, const struct sb_counters *c)
{
	static const char name[] = "porter_http_request_duration_seconds";
	char le[32];
	uint64_t cum = 0;
	int k;

	metrics_family(o, name, "histogram", "Time from a request's head "
	    "complete to its last byte handed to the kernel, in seconds "
	    "(millisecond resolution; a large file includes the client's "
	    "download time).");
	for (k = 0; k < SB_NBUCKET; k++) {
		cum += c->dur[k];
		if (k < SB_NBUCKET - 1)
			metrics_seconds(le, sizeof(le), sb_bucket_ms[k]);
		else
			snprintf(le, sizeof(le), "+Inf");
		metrics_put(o, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", name, le,
		    cum);
	}
	metrics_seconds(le, sizeof(le), c->dur_ms);
	metrics_put(o, "%s_sum %s\n", name, le);
	metrics_put(o, "%s_count %" PRIu64 "\n", name, cum);
}

ssize_t
metrics_render(char *buf, size_t size, const struct sb_totals *t,
    const char *version)
{
	struct metrics_out o = { buf, size, 0 };
	const struct sb_master *m = &t->m;
	uint64_t busy;
	char s[32];
	int k;

	metrics_family(&o, "porter_build_info", "gauge",
	    "Always 1, labelled with the version of porter.");
	metrics_labelled(&o, "porter_build_info", "version", version, 1);
	metrics_family(&o, "porter_config_info", "gauge",
	    "Always 1, labelled with the FNV-1a 64 hash of the configuration "
	    "file in use.");
	snprintf(s, sizeof(s), "%016" PRIx64, m->config_hash);
	metrics_labelled(&o, "porter_config_info", "hash", s, 1);
	metrics_family(&o, "porter_start_time_seconds", "gauge",
	    "When the master started, in seconds since the Unix epoch.");
	metrics_sample(&o, "porter_start_time_seconds", m->start_time);
	metrics_family(&o, "porter_generation", "gauge",
	    "The configuration generation serving (1 at start, +1 a reload).");
	metrics_sample(&o, "porter_generation", m->generation);

	metrics_family(&o, "porter_workers", "gauge",
	    "Worker processes by state.");
	for (k = SB_STARTING; k < SB_NSTATE; k++)
		metrics_labelled(&o, "porter_workers", "state",
		    metrics_states[k], t->workers[k]);
	metrics_family(&o, "porter_worker_exits_total", "counter",
	    "Worker processes reaped, by reason.");
	for (k = 0; k < SB_NEXIT; k++)
		metrics_labelled(&o, "porter_worker_exits_total", "reason",
		    metrics_exits[k], m->exits[k]);
	metrics_family(&o, "porter_config_reloads_total", "counter",
	    "Configuration reloads ended, by result.");
	for (k = 0; k < SB_NRELOAD; k++)
		metrics_labelled(&o, "porter_config_reloads_total", "result",
		    metrics_reloads[k], m->reloads[k]);
	metrics_family(&o, "porter_config_last_reload_successful", "gauge",
	    "1 if the last reload succeeded (or none was tried), else 0.");
	metrics_sample(&o, "porter_config_last_reload_successful",
	    m->reload_ok);
	metrics_family(&o, "porter_config_last_reload_success_timestamp_seconds",
	    "gauge", "When the configuration in use was loaded, in seconds "
	    "since the Unix epoch.");
	metrics_sample(&o, "porter_config_last_reload_success_timestamp_seconds",
	    m->reload_time);

	metrics_family(&o, "porter_connections_accepted_total", "counter",
	    "Connections accepted.");
	metrics_sample(&o, "porter_connections_accepted_total", t->c.accepted);
	metrics_family(&o, "porter_connections", "gauge",
	    "Connections open now, by state: reading (a request on its way, "
	    "a handshake), writing (waiting for the client to take a "
	    "response), idle (keep-alive, between requests).");
	/* Each worker stores its three at once; a reader may see a mix. */
	busy = t->idle + t->writing;
	metrics_labelled(&o, "porter_connections", "state", "reading",
	    t->open > busy ? t->open - busy : 0);
	metrics_labelled(&o, "porter_connections", "state", "writing",
	    t->writing);
	metrics_labelled(&o, "porter_connections", "state", "idle", t->idle);
	metrics_family(&o, "porter_connections_rejected_total", "counter",
	    "Connections closed unserved right after accept, by reason.");
	for (k = 0; k < SB_NREJECT; k++)
		metrics_labelled(&o, "porter_connections_rejected_total",
		    "reason", metrics_rejects[k], t->c.rejected[k]);

	metrics_family(&o, "porter_proxy_protocol_headers_total", "counter",
	    "PROXY protocol headers taken, by version and command.");
	/* [version - 1][command]: v1 has no LOCAL, so three series */
	for (k = 0; k < SB_NPROXY_HDR; k++)
		if (k != 0)
			metrics_put(&o, "porter_proxy_protocol_headers_total"
			    "{version=\"%d\",command=\"%s\"} %" PRIu64 "\n",
			    k / 2 + 1, k % 2 ? "proxy" : "local",
			    t->c.proxy_hdr[k]);
	metrics_family(&o, "porter_proxy_protocol_errors_total", "counter",
	    "Connections closed for their PROXY protocol header, by reason.");
	for (k = 0; k < SB_NPROXY_ERR; k++)
		metrics_labelled(&o, "porter_proxy_protocol_errors_total",
		    "reason", metrics_proxy_errors[k], t->c.proxy_err[k]);

	metrics_family(&o, "porter_http_requests_total", "counter",
	    "Responses sent, by status code (\"other\": any code not listed).");
	for (k = 0; k < SB_NCODE; k++) {
		if (k < SB_NCODE - 1)
			snprintf(s, sizeof(s), "%d", sb_codes[k]);
		else
			snprintf(s, sizeof(s), "other");
		metrics_labelled(&o, "porter_http_requests_total", "code", s,
		    t->c.code[k]);
	}
	/* ALPN names (RFC 7301): "http/1.1" (1.0 included) and "h2". */
	metrics_family(&o, "porter_http_requests_by_protocol_total", "counter",
	    "Responses sent, by protocol.");
	metrics_labelled(&o, "porter_http_requests_by_protocol_total",
	    "protocol", "http/1.1", t->requests >= t->c.h2_requests ?
	    t->requests - t->c.h2_requests : 0);
	metrics_labelled(&o, "porter_http_requests_by_protocol_total",
	    "protocol", "h2", t->c.h2_requests);
	metrics_family(&o, "porter_http2_connections_total", "counter",
	    "Connections that spoke HTTP/2.");
	metrics_sample(&o, "porter_http2_connections_total", t->c.h2_conns);
	metrics_family(&o, "porter_http2_connections", "gauge",
	    "HTTP/2 connections open now.");
	metrics_sample(&o, "porter_http2_connections", t->h2_open);
	metrics_family(&o, "porter_http2_streams", "gauge",
	    "HTTP/2 streams open now.");
	metrics_sample(&o, "porter_http2_streams", t->h2_streams);
	metrics_family(&o, "porter_http_sent_bytes_total", "counter",
	    "Bytes sent in responses, headers included.");
	metrics_sample(&o, "porter_http_sent_bytes_total", t->c.bytes);
	metrics_histogram(&o, &t->c);
	metrics_family(&o, "porter_draining", "gauge",
	    "1 while the server drains (porter -s drain, a shutdown delay, "
	    "stopping): /health fails, responses close the connection.");
	metrics_sample(&o, "porter_draining", m->draining);

	if (o.len >= size) {
		if (size > 0)
			buf[size - 1] = '\0';
		errno = ENOBUFS;
		return -1;
	}
	return (ssize_t)o.len;
}

ssize_t
metrics_scrape(char *buf, size_t size)
{
	struct sb_totals t;

	if (sb_read_totals(&t) == -1)
		return -1;
	return metrics_render(buf, size, &t, PACKAGE_VERSION);
}

uint64_t
metrics_hash(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= b[i];
		h *= METRICS_FNV_PRIME;
	}
	return h;
}

int
metrics_hash_file(const char *path, uint64_t *h)
{
	char buf[4096];
	uint64_t v = METRICS_FNV_BASIS;
	ssize_t n;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		v = metrics_hash(v, buf, (size_t)n);
	}
	close(fd);
	*h = v;
	return 0;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}
