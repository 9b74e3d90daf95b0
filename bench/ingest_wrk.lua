-- wrk script for ingest_bench.py: POST /ingest with a unique message key per request.
-- Each wrk thread takes its own channel id (set by the bench through CHANNEL_BASE + thread
-- number), so keys never collide across threads; message ids count up from FIRST_ID.
local threads = 0
local channel
-- Message ids from FIRST_ID (the bench's --first-id), dates counted from the first.
local first = tonumber(os.getenv("FIRST_ID") or "1")
local counter = first - 1

function setup(thread)
  thread:set("thread_number", threads)
  threads = threads + 1
end

function init(args)
  channel = tostring(tonumber(os.getenv("CHANNEL_BASE") or "-3000") - (thread_number or 0))
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-Gateway-Token"] = os.getenv("TOKEN")
end

function request()
  counter = counter + 1
  -- Seconds after 2025-10-07T12:00:00Z, like the asyncio client's payloads.
  local t = 1759838400 + counter - first
  local stamp = os.date("!%Y-%m-%dT%H:%M:%S+00:00", t)
  local text
  if counter % 4 == 0 then
    text = "\240\159\159\162Swing Trade\\nAtivo: BOVAW32\\nCompra: 1,04 a 1,06\\nAlvo 1: 1,15\\nAlvo 2: 2,15\\nAlvo final: 3,50\\nStop: 0,70"
  else
    text = "Bom dia pessoal! Hoje vamos ter um dia interessante no mercado."
  end
  local body = '{"channelId":"' .. channel .. '","messageId":' .. counter .. ',"text":"' .. text ..
    '","timestamp":"' .. stamp .. '"}'
  return wrk.format(nil, "/ingest", nil, body)
end

done = function(summary, latency, requests)
  io.write(string.format("WRK_RESULT %d %f %f %f %d\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
