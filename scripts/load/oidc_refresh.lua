-- OIDC refresh: each refresh token is rotated at its use, so every
-- connection needs a grant of its own. Tokens wait in a pool per wrk
-- thread; when the pool is empty, a new grant is made (authorize with the
-- TGC cookie, code exchange) and its refresh token joins the pool. Counts
-- the refreshes only. Environment: as oidc_code.lua.

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
   codes, tokens = {}, {}
   refreshed, failed = 0, 0
end

function request()
   local token = table.remove(tokens)
   if token then
      return wrk.format("POST", "/oidc/token", form, "grant_type=refresh_token&refresh_token=" .. token)
   end
   local code = table.remove(codes)
   if code then
      return wrk.format("POST", "/oidc/token", form,
         "grant_type=authorization_code&code=" .. code .. "&redirect_uri=" .. redirect)
   end
   return wrk.format("GET", authorize, { ["Cookie"] = "TGC=" .. tgc })
end

function response(status, headers, body)
   if status == 302 then
      local location = headers["location"] or headers["Location"] or ""
      local code = location:match("[?&]code=([^&]+)")
      if code then table.insert(codes, code) else failed = failed + 1 end
      return
   end
   local token = status == 200 and body:match('"refresh_token":"([^"]+)"')
   if not token then
      failed = failed + 1
      return
   end
   table.insert(tokens, token)
   refreshed = refreshed + 1
end

function done(summary, latency, requests)
   local ok, bad = 0, 0
   for _, t in ipairs(threads) do
      ok = ok + t:get("refreshed")
      bad = bad + t:get("failed")
   end
   io.write(string.format("token answers with a refresh token: %d, %d failed, %.0f/s (all but one per connection are refreshes)\n",
      ok, bad, ok / (summary.duration / 1e6)))
end
