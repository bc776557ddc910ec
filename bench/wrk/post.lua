-- POST one fixed body per request (bench/suite.py).
-- WRK_BODY_FILE: the file holding the request body; WRK_CONTENT_TYPE: its Content-Type;
-- WRK_AUTHORIZATION: an Authorization header value (modelport keeps auth on).
-- wrk's own text report (latency distribution, Non-2xx count, socket errors) is what the
-- suite parses, so no per-response hook runs: the client does as little work as possible.
local path = os.getenv("WRK_BODY_FILE")
if path == nil then
  error("set WRK_BODY_FILE to the request body's file")
end
local f = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = os.getenv("WRK_CONTENT_TYPE") or "application/json"
local auth = os.getenv("WRK_AUTHORIZATION")
if auth ~= nil and auth ~= "" then
  wrk.headers["Authorization"] = auth
end
