-- GET /api/v1/results/{poll}/ over the benchmark's polls (BENCH_POLLS: one poll id per line).
-- BENCH_CACHE_BUST=1 adds ?run=<n>, a distinct query per request: the gateway's micro-cache never has
-- it, so every request reaches vote_service (the "without the edge cache" figure of scripts/bench/edge_runs.py).
function init(args)
   polls = {}
   for line in io.lines(os.getenv("BENCH_POLLS")) do
      table.insert(polls, line)
   end
   bust = os.getenv("BENCH_CACHE_BUST") == "1"
   i = 0
end

function request()
   i = i + 1
   local path = "/api/v1/results/" .. polls[(i % #polls) + 1] .. "/"
   if bust then
      path = path .. "?run=" .. tostring(math.random(1, 2000000000)) .. "-" .. i
   end
   return wrk.format("GET", path)
end
