-- SPDX-License-Identifier: Apache-2.0
-- Argo CD health of a kage.dev Sandbox, from the status the controller
-- writes: phase, observedGeneration and the Ready, Stalled and Reconciling
-- conditions. Installed as resource.customizations.health.kage.dev_Sandbox
-- (manifests/argocd/argocd-cm-patch.yaml holds the same text).
--
--   being deleted                          Progressing
--   no status, or status of an older spec  Progressing  waiting for the controller
--   Stalled=True                           Degraded     a person must act
--   phase Failed                           Degraded
--   Reconciling=True                       Progressing  on its way
--   phase Paused                           Suspended    spec.paused, on purpose
--   phase Expired                          Suspended    lifetime over, kept (Retain)
--   phase Succeeded                        Healthy      the command completed
--   phase Running and Ready=True           Healthy
--   anything else                          Progressing
local hs = {}

local function text(v)
  if type(v) == "string" then
    return v
  end
  return ""
end

local function condition(status, kind)
  if type(status.conditions) ~= "table" then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if type(c) == "table" and c.type == kind then
      return c
    end
  end
  return nil
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

-- "Reason: message" (what to act on, then the detail), or fallback.
local function explain(c, fallback)
  if c == nil then
    return fallback
  end
  local reason, message = text(c.reason), text(c.message)
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  end
  if message ~= "" then
    return message
  end
  if reason ~= "" then
    return reason
  end
  return fallback
end

-- "word: message", or the word alone.
local function with(word, c)
  if c ~= nil and text(c.message) ~= "" then
    return word .. ": " .. c.message
  end
  return word
end

local function verdict(status, message)
  hs.status = status
  hs.message = message
  return hs
end

local meta = obj.metadata or {}
local status = obj.status

if meta.deletionTimestamp ~= nil then
  return verdict("Progressing", "the sandbox is being deleted")
end
if type(status) ~= "table" or type(status.observedGeneration) ~= "number" then
  return verdict("Progressing", "waiting for the controller")
end
if type(meta.generation) == "number" and status.observedGeneration < meta.generation then
  return verdict("Progressing", "waiting for the controller: it has seen generation " ..
    tostring(status.observedGeneration) .. " of the spec, not yet " .. tostring(meta.generation))
end

local phase = text(status.phase)
local ready = condition(status, "Ready")
local stalled = condition(status, "Stalled")
local reconciling = condition(status, "Reconciling")

if phase == "Terminating" then
  return verdict("Progressing", "the sandbox is being deleted")
end
if isTrue(stalled) then
  return verdict("Degraded", explain(stalled, "stalled"))
end
if phase == "Failed" then
  return verdict("Degraded", explain(ready, "failed"))
end
if isTrue(reconciling) then
  return verdict("Progressing", explain(ready or reconciling, "reconciling"))
end
if phase == "Paused" then
  return verdict("Suspended", with("paused", ready))
end
if phase == "Expired" then
  return verdict("Suspended", with("expired", ready))
end
if phase == "Succeeded" then
  return verdict("Healthy", with("completed", ready))
end
if phase == "Running" and isTrue(ready) then
  return verdict("Healthy", text(ready.message) ~= "" and ready.message or "running")
end
return verdict("Progressing", explain(ready, "waiting for the controller"))
