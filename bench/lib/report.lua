-- wrk script: print one machine-readable line with the run's summary.
-- Latencies are in microseconds, duration too. Used by bench/run.
done = function(summary, latency, requests)
	local e = summary.errors
	local function pct(p)
		return math.floor(latency:percentile(p) + 0.5)
	end
	io.write(string.format(
		'PORTERBENCH {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
		'"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, ' ..
		'"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %d}\n',
		summary.requests, summary.duration, summary.bytes,
		e.connect, e.read, e.write, e.status, e.timeout,
		pct(50), pct(90), pct(99), math.floor(latency.max + 0.5),
		math.floor(latency.mean + 0.5)))
end
