-- SPDX-License-Identifier: Apache-2.0
-- Runs an Argo CD health script on Kubernetes objects read from JSON files,
-- as Argo CD does: the object in the global obj, the script's returned
-- table read for status and message. Lua 5.1 (Argo CD's gopher-lua speaks
-- 5.1) with lua-cjson.
--   lua5.1 run_health.lua SCRIPT FIXTURE.json...
-- prints one line per fixture: <file name without .json> TAB <status> TAB <message>
local cjson = require("cjson")

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- Argo CD hands the script no JSON nulls: drop them as it does.
local function strip(v)
  if v == cjson.null then
    return nil
  end
  if type(v) == "table" then
    for k, x in pairs(v) do
      v[k] = strip(x)
    end
  end
  return v
end

local script = arg[1]
local chunk = assert(loadstring(read(script), "=" .. script))

for i = 2, #arg do
  local path = arg[i]
  local name = path:match("([^/]+)%.json$") or path
  -- A fresh environment per object holding only what Argo CD's Lua VM
  -- offers (no io, os or require), so the script cannot lean on more.
  local env = {
    obj = strip(cjson.decode(read(path))),
    ipairs = ipairs, pairs = pairs, next = next, type = type, tostring = tostring,
    tonumber = tonumber, select = select, error = error, pcall = pcall,
    string = string, table = table, math = math,
  }
  setfenv(chunk, env)
  local ok, hs = pcall(chunk)
  if not ok then
    print(name .. "\tERROR\t" .. tostring(hs))
  elseif type(hs) ~= "table" then
    print(name .. "\tERROR\tthe script returned " .. type(hs) .. ", not a table")
  else
    print(name .. "\t" .. tostring(hs.status) .. "\t" .. tostring(hs.message))
  end
end
