-- GET /api/v1/results/{poll}/ over a list of polls (BENCH_POLLS: one poll id per line), round robin.
-- scripts/bench/edge_runs.py points it at open polls (never kept at the edge) and at closed ones (cached).
function init(args)
   polls = {}
   for line in io.lines(os.getenv("BENCH_POLLS")) do
      table.insert(polls, line)
   end
   i = 0
end

function request()
   i = i + 1
   return wrk.format("GET", "/api/v1/results/" .. polls[(i % #polls) + 1] .. "/")
end
