/*
 * climit_metrics.c - the client-limit counters (struct limit_stats, from
 * climit_stats() in the master or limit_stats()) as Prometheus text
 * exposition format 0.0.4, to be appended after metrics_render()'s
 * families. Pure: no I/O, nothing allocated. No per-address label: the
 * label sets are fixed here (reason, mode, cause, table); per-address
 * detail is porter -s clients' business.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "climit.h"
#include "metrics.h"

ssize_t
climit_metrics_render(char *buf, size_t size, const struct limit_stats *st)
{
	static const char *const reasons[LIMIT_R_N] = {
		"rate", "connections", "ban"
	};
	static const char *const causes[LIMIT_C_N] = {
		"probe", "ignored_429", "manual"
	};
	struct metrics_out o = { buf, size, 0 };
	int r;

	metrics_family(&o, "porter_client_rejected_total", "counter",
	    "Requests and connections refused by client_limits (dry_run: "
	    "would have been).");
	for (r = 0; r < LIMIT_R_N; r++) {
		metrics_put(&o, "porter_client_rejected_total{reason=\"%s\","
		    "mode=\"enforce\"} %" PRIu64 "\n", reasons[r],
		    st->rejected[r][0]);
		metrics_put(&o, "porter_client_rejected_total{reason=\"%s\","
		    "mode=\"dry_run\"} %" PRIu64 "\n", reasons[r],
		    st->rejected[r][1]);
	}
	metrics_family(&o, "porter_client_bans_total", "counter",
	    "Bans started, by cause.");
	for (r = 0; r < LIMIT_C_N; r++)
		metrics_put(&o, "porter_client_bans_total{cause=\"%s\"} %" PRIu64
		    "\n", causes[r], st->bans[r]);
	metrics_family(&o, "porter_client_bans_active", "gauge",
	    "Bans in force now.");
	metrics_put(&o, "porter_client_bans_active %" PRIu64 "\n",
	    st->bans_active);
	metrics_family(&o, "porter_client_table_entries", "gauge",
	    "Entries in use in the client-limit tables.");
	metrics_put(&o, "porter_client_table_entries{table=\"clients\"} %" PRIu64
	    "\n", st->entries);
	metrics_put(&o, "porter_client_table_entries{table=\"bans\"} %" PRIu64
	    "\n", st->bans_active);
	metrics_family(&o, "porter_client_table_capacity", "gauge",
	    "Size of the client-limit tables.");
	metrics_put(&o, "porter_client_table_capacity{table=\"clients\"} %" PRIu64
	    "\n", st->capacity);
	metrics_put(&o, "porter_client_table_capacity{table=\"bans\"} %" PRIu64
	    "\n", st->ban_capacity);
	metrics_family(&o, "porter_client_table_evictions_total", "counter",
	    "Client entries evicted to make room for new clients.");
	metrics_put(&o, "porter_client_table_evictions_total %" PRIu64 "\n",
	    st->evictions);
	metrics_family(&o, "porter_client_untracked_total", "counter",
	    "Requests let through untracked: no room in the client table.");
	metrics_put(&o, "porter_client_untracked_total %" PRIu64 "\n",
	    st->untracked);
	metrics_family(&o, "porter_client_bans_replaced_total", "counter",
	    "Automatic bans replaced because the ban table was full.");
	metrics_put(&o, "porter_client_bans_replaced_total %" PRIu64 "\n",
	    st->bans_replaced);
	metrics_family(&o, "porter_client_shared_keys", "gauge",
	    "Addresses counted as shared (NAT) now.");
	metrics_put(&o, "porter_client_shared_keys %" PRIu64 "\n",
	    st->shared_keys);
	if (o.len >= size) {
		if (size > 0)
			buf[size - 1] = '\0';
		errno = ENOBUFS;
		return -1;
	}
	return (ssize_t)o.len;
}
