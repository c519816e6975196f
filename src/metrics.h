/*
 * metrics.h - the Prometheus exposition of porter's scoreboard: pure
 * rendering, no I/O but metrics_hash_file().
 *
 * Format: the Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/), served
 * as METRICS_CONTENT_TYPE: for each family a "# HELP" line (text escaped:
 * \\ and \n), a "# TYPE" line, then its samples; label values escaped
 * (\\, \" and \n). Units are base units: seconds (latencies, times as
 * seconds since the Unix epoch) and bytes. Counters end in _total and
 * never go backwards (the scoreboard folds a dead worker's counts into
 * its retired totals in one step). Labels are bounded sets fixed here:
 * no per-address or per-pid label.
 *
 * Families: porter_build_info{version}, porter_config_info{hash},
 * porter_start_time_seconds, porter_generation, porter_workers{state},
 * porter_worker_exits_total{reason}, porter_config_reloads_total{result},
 * porter_config_last_reload_successful,
 * porter_config_last_reload_success_timestamp_seconds,
 * porter_connections_accepted_total,
 * porter_connections{state="reading|writing|idle"},
 * porter_connections_rejected_total{reason},
 * porter_http_requests_total{code} (the exact codes of sb_codes[], and
 * "other"), porter_http_sent_bytes_total,
 * porter_http_request_duration_seconds (histogram over sb_bucket_ms[],
 * cumulative _bucket{le} up to "+Inf", _sum, _count), porter_draining.
 *
 * Adding a family: a counter that workers bump goes into struct
 * sb_counters (scoreboard.h), which gives it the fold and so
 * monotonicity across crashes, recycles and reloads for free; a gauge
 * into struct sb_slot (summed over live slots only); then a few lines
 * in metrics_render() and the golden file (PORTER_UPDATE_GOLDEN=1).
 * A second label on the request families (HTTP/2's protocol="h1|h2")
 * is an outer index on sb_counters.code[], dur[] and dur_ms, looped
 * over here with the label printed before "code".
 *
 * Served by status.c on the status listener (status.listen), never on
 * the public ones.
 */
#ifndef METRICS_H
#define METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "scoreboard.h"

#define METRICS_CONTENT_TYPE	"text/plain; version=0.0.4; charset=utf-8"
/*
 * A buffer this size always holds metrics_render()'s output (under
 * 8 KiB with every counter at its maximum and a 64-byte version).
 */
#define METRICS_BUF_SIZE	16384

/*
 * A text being rendered into a caller's buffer of size bytes: len counts
 * what was wanted, so len > size - 1 after the last write means the
 * buffer was too small (the text is cut, never overrun).
 */
struct metrics_out {
	char		*buf;
	size_t		 size;
	size_t		 len;
};
/* Append printf-formatted text to o. */
void	 metrics_put(struct metrics_out *o, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* A family's "# HELP" (help escaped) and "# TYPE" lines. */
void	 metrics_family(struct metrics_out *o, const char *name,
	    const char *type, const char *help);

/*
 * Render t (a snapshot from sb_read_totals(), master facts included) and
 * the version string (a label value: any bytes, escaped here) into buf,
 * which the caller owns: nothing is allocated. Returns the length
 * written, without the NUL that follows it; or -1 with errno ENOBUFS
 * when size is too small (buf then holds a NUL-terminated prefix, never
 * more than size bytes).
 */
ssize_t	 metrics_render(char *buf, size_t size, const struct sb_totals *t,
	    const char *version);
/*
 * sb_read_totals() then metrics_render() with PACKAGE_VERSION: the body
 * of a /metrics response. -1 with errno EAGAIN (sb_read_totals()'s) or
 * ENOBUFS.
 */
ssize_t	 metrics_scrape(char *buf, size_t size);

/*
 * Escape src into dst (size bytes, always NUL-terminated when size > 0)
 * as the format wants a label value (label 1: \\, \" and \n) or HELP
 * text (label 0: \\ and \n). Returns the escaped length, which may be
 * size or more: then dst holds a truncated prefix (as snprintf()).
 */
size_t	 metrics_escape(char *dst, size_t size, const char *src, int label);

/*
 * The config hash of porter_config_info: 64-bit FNV-1a of the bytes,
 * shown as 16 lower-case hex digits. Not cryptographic: it tells fleet
 * members whether they load the same file, nobody forges it to fool them
 * (whoever could, could change the file). Stable across hosts and
 * builds. metrics_hash_file() hashes a file's contents: 0 and *h, or -1
 * with errno (open(2)'s, read(2)'s).
 */
#define METRICS_FNV_BASIS	UINT64_C(0xcbf29ce484222325)
uint64_t metrics_hash(uint64_t h, const void *p, size_t n);
int	 metrics_hash_file(const char *path, uint64_t *h);

#endif /* METRICS_H */
