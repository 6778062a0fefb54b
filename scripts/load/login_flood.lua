-- Password logins at a set pace: each connection posts the login form,
-- then waits DELAY_MS before the next one, so that connections x 1000 /
-- (DELAY_MS + latency) logins per second arrive. Environment: CSRF (the
-- form token), COOKIE (the cookies it goes with), LOGIN, PASSWORD, SERVICE
-- (encoded; a login accepted is a 303 to it), DELAY_MS.
wrk.method = "POST"
wrk.path = "/cas/login"
wrk.body = "csrf_token=" .. os.getenv("CSRF") .. "&username=" .. os.getenv("LOGIN")
   .. "&password=" .. os.getenv("PASSWORD") .. "&service=" .. os.getenv("SERVICE")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = os.getenv("COOKIE")
local pause = tonumber(os.getenv("DELAY_MS") or "0")

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok, other = 0, 0 end
function delay() return pause end
function response(status, headers, body)
   if status == 303 then
      ok = ok + 1
   else
      other = other + 1
   end
end
function done(summary, latency, requests)
   local good, bad = 0, 0
   for _, t in ipairs(threads) do good = good + t:get("ok"); bad = bad + t:get("other") end
   io.write(string.format("logins: %d accepted, %d other (refused, queue full), %.1f accepted/s\n",
      good, bad, good / (summary.duration / 1e6)))
end
