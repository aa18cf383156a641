-- POST /api/v1/votes/ with a distinct user (token) per request, spread over the benchmark's polls.
-- Input: BENCH_VOTES file, one line per vote: "<token> <poll id> <choice id>".
-- Threads take disjoint slices (thread k uses lines k, k+T, k+2T, ...), so no user votes twice.
-- BENCH_OFFSET skips the lines an earlier run of the same benchmark used.

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
   -- a later run starts after the lines an earlier run used (BENCH_OFFSET), so users stay distinct
   index = tonumber(os.getenv("BENCH_OFFSET") or "0") + id + 1
end

function request()
   if index > #lines then
      index = ((index - 1) % #lines) + 1 -- exhausted: repeats answer 409 and show up as non-2xx
   end
   local token, poll, choice = lines[index]:match("(%S+) (%S+) (%S+)")
   index = index + nthreads
   return wrk.format("POST", "/api/v1/votes/", {
      ["Authorization"] = "Bearer " .. token,
      ["Content-Type"] = "application/json",
   }, '{"poll": "' .. poll .. '", "choice": "' .. choice .. '"}')
end
