-- wrk script: POST /commands with unique registrations (bench/online_bench.py runs it).
-- Arguments after `--`: a run prefix, commands per request, the bearer token.
-- Each request's command and officer ids are unique: run prefix, wrk thread, request counter.
local next_thread = 0

function setup(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
end

local counter = 0
local prefix, per

function init(args)
  prefix = args[1] or "w"
  per = tonumber(args[2] or "1")
  wrk.method = "POST"
  wrk.path = "/commands"
  wrk.headers["Authorization"] = "Bearer " .. (args[3] or "")
  wrk.headers["Content-Type"] = "application/json"
end

local template = '{"type":"register_officer","command_id":"c-%s","officer_id":"%s","name":"Bench Officer",'
  .. '"email":"officer.%s@bench.example","org_id":"BENCH","occurred_at":"2024-04-01T09:00:00+05:30"}'

function request()
  local parts = {}
  for i = 1, per do
    counter = counter + 1
    local id = string.format("%s-%d-%d", prefix, thread_id, counter)
    parts[i] = string.format(template, id, id, id)
  end
  local body
  if per == 1 then body = parts[1] else body = "[" .. table.concat(parts, ",") .. "]" end
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,'
    .. '"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_status":%d,"errors_timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
