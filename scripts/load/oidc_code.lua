-- OIDC authorization code flow for a logged-in browser: /oidc/authorize
-- with the TGC cookie (302 to the client with a code), then the client's
-- code exchange at /oidc/token (client_secret_basic). Counts exchanges.
-- Environment: TGC, CLIENT_ID, REDIRECT_URI (encoded), BASIC (base64 of
-- id:secret).

local tgc = os.getenv("TGC")
local redirect = os.getenv("REDIRECT_URI")
local authorize = "/oidc/authorize?response_type=code&scope=openid&state=s&nonce=n&client_id="
   .. os.getenv("CLIENT_ID") .. "&redirect_uri=" .. redirect
local form = { ["Authorization"] = "Basic " .. os.getenv("BASIC"),
               ["Content-Type"] = "application/x-www-form-urlencoded" }
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   queue, head, tail = {}, 1, 0
   exchanged, failed = 0, 0
end

function request()
   if head <= tail then
      local code = queue[head]
      queue[head] = nil
      head = head + 1
      return wrk.format("POST", "/oidc/token", form,
         "grant_type=authorization_code&code=" .. code .. "&redirect_uri=" .. redirect)
   end
   return wrk.format("GET", authorize, { ["Cookie"] = "TGC=" .. tgc })
end

function response(status, headers, body)
   if status == 302 then
      local location = headers["location"] or headers["Location"] or ""
      local code = location:match("[?&]code=([^&]+)")
      if code then
         tail = tail + 1
         queue[tail] = code
      else
         failed = failed + 1
      end
   elseif status == 200 and body:find('"access_token"', 1, true) then
      exchanged = exchanged + 1
   else
      failed = failed + 1
   end
end

function done(summary, latency, requests)
   local ok, bad = 0, 0
   for _, t in ipairs(threads) do
      ok = ok + t:get("exchanged")
      bad = bad + t:get("failed")
   end
   io.write(string.format("code exchanges: %d, %d failed, %.0f exchanges/s\n",
      ok, bad, ok / (summary.duration / 1e6)))
end
