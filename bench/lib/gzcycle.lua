-- wrk script for the gzip case: cycle through GZ_FILES large text files
-- (/gz/f00.txt, /gz/f01.txt, ...) asking for gzip, so every request is
-- a gzip cache miss; print how many came gzip-coded. Used by bench/run.
-- GZ_RANGE=1 asks for the first 100 bytes only: the server still has to
-- compress the whole file, but the bodies no longer cost bandwidth, so
-- what shows is the event loop alone.
local n = tonumber(os.getenv("GZ_FILES") or "48")
local headers = { ["Accept-Encoding"] = "gzip" }
-- GZ_IDENTITY=1 asks for no coding: the same transfers with no
-- compressing at all, the control for the default mode.
if os.getenv("GZ_IDENTITY") == "1" then
	headers = {}
end
if os.getenv("GZ_RANGE") == "1" then
	headers["Range"] = "bytes=0-99"
end
i = 0		-- globals: done() reads them through thread:get()
gz = 0
local threads = {}

setup = function(thread)
	table.insert(threads, thread)
end

request = function()
	i = i % n + 1
	return wrk.format("GET", string.format("/gz/f%02d.txt", i - 1), headers)
end

response = function(status, headers, body)
	if headers["Content-Encoding"] == "gzip" then
		gz = gz + 1
	end
end

done = function(summary, latency, requests)
	local total = 0
	for _, t in ipairs(threads) do
		total = total + t:get("gz")
	end
	io.write(string.format(
	    'PORTERBENCH {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
	    '"gzip": %d, "p99_us": %d}\n', summary.requests, summary.duration,
	    summary.bytes, total, math.floor(latency:percentile(99) + 0.5)))
end
