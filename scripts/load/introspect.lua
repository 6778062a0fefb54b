-- Token introspection (RFC 7662) of one valid access token by a
-- confidential client (client_secret_basic). Environment: TOKEN, BASIC.
wrk.method = "POST"
wrk.path = "/oidc/introspect"
wrk.body = "token=" .. os.getenv("TOKEN")
wrk.headers["Authorization"] = "Basic " .. os.getenv("BASIC")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) active, other = 0, 0 end
function response(status, headers, body)
   if status == 200 and body:find('"active":true', 1, true) then active = active + 1 else other = other + 1 end
end
function done(summary, latency, requests)
   local ok, bad = 0, 0
   for _, t in ipairs(threads) do ok = ok + t:get("active"); bad = bad + t:get("other") end
   io.write(string.format("introspections: %d active, %d other\n", ok, bad))
end
