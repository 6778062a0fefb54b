-- The single sign-on round as a browser and a CAS service make it: the
-- browser, with its TGC cookie, asks /cas/login for the service and gets a
-- 302 with a new service ticket; the service validates that ticket on
-- /cas/p3/serviceValidate. Each wrk connection alternates the two; tickets
-- wait in a queue per wrk thread (any connection validates any of them).
-- Environment: TGC (the cookie value), SERVICE (the service URL, encoded).

local tgc = os.getenv("TGC")
local service = os.getenv("SERVICE")
local login = "/cas/login?service=" .. service
local validate = "/cas/p3/serviceValidate?service=" .. service .. "&ticket="
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   queue, head, tail = {}, 1, 0
   validated, failed = 0, 0
end

function request()
   if head <= tail then
      local ticket = queue[head]
      queue[head] = nil
      head = head + 1
      return wrk.format("GET", validate .. ticket)
   end
   return wrk.format("GET", login, { ["Cookie"] = "TGC=" .. tgc })
end

function response(status, headers, body)
   if status == 302 then
      local location = headers["location"] or headers["Location"] or ""
      local ticket = location:match("[?&]ticket=([^&]+)")
      if ticket then
         tail = tail + 1
         queue[tail] = ticket
      else
         failed = failed + 1
      end
   elseif status == 200 and body:find("<cas:authenticationSuccess>", 1, true) then
      validated = validated + 1
   else
      failed = failed + 1
   end
end

function done(summary, latency, requests)
   local ok, bad = 0, 0
   for _, t in ipairs(threads) do
      ok = ok + t:get("validated")
      bad = bad + t:get("failed")
   end
   io.write(string.format("SSO rounds: %d validated, %d failed, %.0f rounds/s\n",
      ok, bad, ok / (summary.duration / 1e6)))
end
