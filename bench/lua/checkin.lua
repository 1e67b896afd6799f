-- wrk script: POST /tickets/api/check-in with a different payload on every request.
-- Usage: wrk -tT ... -s bench/lua/checkin.lua URL -- payloads.txt T
-- Each thread walks its own slice of the file (no payload is sent twice until a thread runs
-- out), and counts the verdicts it gets back; done() prints the totals as "verdict NAME N".
local threads = {}
local counter = 1

function setup(thread)
  thread:set("index", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  local path = args[1]
  local all = {}
  for line in io.lines(path) do
    if #line > 0 then all[#all + 1] = line end
  end
  local n = index or 1  -- set by setup() as a global of this thread's state
  local count = tonumber(args[2]) or 1  -- the number of wrk threads
  payloads = {}
  for i = n, #all, count do payloads[#payloads + 1] = all[i] end
  position = 0
  valid, used, other = 0, 0, 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  position = position + 1
  local payload = payloads[((position - 1) % #payloads) + 1]
  return wrk.format(nil, nil, nil, '{"payload":"' .. payload .. '"}')
end

function response(status, headers, body)
  if status == 200 and body:find('"verdict":"VALID"', 1, true) then
    valid = valid + 1
  elseif status == 200 and body:find('"verdict":"ALREADY_USED"', 1, true) then
    used = used + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local v, u, o = 0, 0, 0
  for _, thread in ipairs(threads) do
    v = v + (thread:get("valid") or 0)
    u = u + (thread:get("used") or 0)
    o = o + (thread:get("other") or 0)
  end
  io.write(string.format("verdict VALID %d\nverdict ALREADY_USED %d\nverdict OTHER %d\n", v, u, o))
end
