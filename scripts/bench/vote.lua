-- POST a vote with a distinct user (token) per request, spread over the benchmark's polls.
-- Input: BENCH_VOTES file, one line per vote: "<token> <poll id> <choice id>".
-- Threads take disjoint slices (thread k uses lines k, k+T, k+2T, ...), so no user votes twice.
-- BENCH_OFFSET skips the lines an earlier run of the same benchmark used.
-- BENCH_VOTE_PATH: the path to POST to (default /api/v1/votes/; the baseline app serves /votes/).
-- BENCH_RETRY_AFTER=1: behave like a client honouring Retry-After: every 503 delays one of the thread's
--   next requests by Retry-After seconds (the overload run, scripts/bench/overload.py).
--
-- done() prints, for scripts/bench.py to parse:
--   bench-status <code>=<count> ...   every response by status code, exactly (wrk's own summary only
--                                     says "Non-2xx or 3xx responses")
--   bench-sent <n>                    requests written (sent - answered = cut off in flight at the end)
--   bench-next-offset <n>             the BENCH_OFFSET a following run starts at (no line reused)
--   bench-wrapped <n>                 requests that reused a line because the file ran out (answer 409)

local threads = {}
local counter = 0

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

function init(args)
   local path = os.getenv("BENCH_VOTES")
   lines = {}
   for line in io.lines(path) do
      table.insert(lines, line)
   end
   nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
   vote_path = os.getenv("BENCH_VOTE_PATH") or "/api/v1/votes/"
   -- a later run starts after the lines an earlier run used (BENCH_OFFSET), so users stay distinct
   index = tonumber(os.getenv("BENCH_OFFSET") or "0") + id + 1
   statuses = {}
   sent = 0
   wrapped = 0
   retry_after = os.getenv("BENCH_RETRY_AFTER") == "1"
   owed = {} -- delays (ms) owed for 503s, spent by the next requests of this thread
end

if os.getenv("BENCH_RETRY_AFTER") == "1" then -- defined only then: wrk times every request of a script with delay()
   function delay()
      if #owed > 0 then
         return table.remove(owed)
      end
      return 0
   end
end

function request()
   local line = index
   if line > #lines then
      line = ((line - 1) % #lines) + 1 -- exhausted: repeats answer 409 and show up as non-2xx
      wrapped = wrapped + 1
   end
   local token, poll, choice = lines[line]:match("(%S+) (%S+) (%S+)")
   index = index + nthreads
   sent = sent + 1
   return wrk.format("POST", vote_path, {
      ["Authorization"] = "Bearer " .. token,
      ["Content-Type"] = "application/json",
   }, '{"poll": "' .. poll .. '", "choice": "' .. choice .. '"}')
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   if retry_after and status == 503 then
      table.insert(owed, 1000 * (tonumber(headers["Retry-After"]) or 1))
   end
end

function done(summary, latency, requests)
   local total, codes, total_sent, next_offset, total_wrapped = {}, {}, 0, 0, 0
   for _, thread in ipairs(threads) do
      for code, n in pairs(thread:get("statuses") or {}) do
         if total[code] == nil then
            table.insert(codes, code)
         end
         total[code] = (total[code] or 0) + n
      end
      total_sent = total_sent + (thread:get("sent") or 0)
      total_wrapped = total_wrapped + (thread:get("wrapped") or 0)
      next_offset = math.max(next_offset, (thread:get("index") or 1) - 1)
   end
   table.sort(codes)
   local parts = {}
   for _, code in ipairs(codes) do
      table.insert(parts, code .. "=" .. total[code])
   end
   io.write("bench-status " .. table.concat(parts, " ") .. "\n")
   io.write("bench-sent " .. total_sent .. "\n")
   io.write("bench-next-offset " .. next_offset .. "\n")
   io.write("bench-wrapped " .. total_wrapped .. "\n")
end
