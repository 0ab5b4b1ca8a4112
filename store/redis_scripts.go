package store

import "github.com/redis/go-redis/v9"

// Lua scripts of the Redis store. Every script touches exactly one key
// (KEYS[1]), so it runs on Redis Cluster whatever slot the key hashes to.
// Times are Unix milliseconds passed by the caller (never server TIME), so
// tests control the clock and replicas replay the same writes.
//
// The driver scripts mirror the transitions of driver_state.go; each is the
// common prelude (read the hash), a body (compare), and the write helper
// (write all fields, bump ver). Every driver script returns
//
//	{code, status, trip, lease_ms, offer, ver}
//
// code is "ok" (the returned state is the new state, changed or not) or
// "conflict" (the returned state is the current one, unchanged).

// driverPrelude reads the driver hash into locals and defines the helpers.
// A missing hash is a driver never seen: available at version 0.
const driverPrelude = `
local key = KEYS[1]
local h = redis.call('HMGET', key, 'status', 'trip', 'lease_ms', 'offer', 'ver')
local status = h[1] or 'available'
local trip = h[2] or ''
local lease = h[3] or '0'
local offer = h[4] or ''
local ver = tonumber(h[5] or '0')

local function reply(code)
  return {code, status, trip, lease, offer, tostring(ver)}
end

local function write(s, t, l, o)
  ver = ver + 1
  status, trip, lease, offer = s, t, l, o
  redis.call('HSET', key, 'status', s, 'trip', t, 'lease_ms', l, 'offer', o, 'ver', tostring(ver))
  return reply('ok')
end

-- lapsed: a reservation whose lease passed before now.
local function lapsed(now)
  return status == 'reserved' and tonumber(lease) < tonumber(now)
end

-- free: can be reserved at now.
local function free(now)
  return status == 'available' or lapsed(now)
end

-- held: a live reservation or a trip in progress.
local function held(now)
  return status == 'on_trip' or (status == 'reserved' and tonumber(lease) >= tonumber(now))
end
`

// reserveScript: ARGV trip, lease_until_ms, now_ms.
var reserveScript = redis.NewScript(driverPrelude + `
if free(ARGV[3]) then
  return write('reserved', ARGV[1], ARGV[2], '')
end
return reply('conflict')
`)

// setOfferScript: ARGV trip, offer_json, lease_until_ms.
var setOfferScript = redis.NewScript(driverPrelude + `
if status == 'reserved' and trip == ARGV[1] then
  return write('reserved', trip, ARGV[3], ARGV[2])
end
return reply('conflict')
`)

// releaseScript: ARGV trip, now_ms.
var releaseScript = redis.NewScript(driverPrelude + `
if status == 'reserved' and trip == ARGV[1] then
  return write('available', '', '0', '')
end
if free(ARGV[2]) then
  return reply('ok')
end
return reply('conflict')
`)

// startTripScript: ARGV trip, now_ms.
var startTripScript = redis.NewScript(driverPrelude + `
if status == 'reserved' and trip == ARGV[1] and tonumber(lease) >= tonumber(ARGV[2]) then
  return write('on_trip', trip, '0', '')
end
return reply('conflict')
`)

// endTripScript: ARGV trip.
var endTripScript = redis.NewScript(driverPrelude + `
if status == 'on_trip' and trip == ARGV[1] then
  return write('available', '', '0', '')
end
return reply('conflict')
`)

// setOfflineScript: ARGV now_ms.
var setOfflineScript = redis.NewScript(driverPrelude + `
if held(ARGV[1]) then
  return reply('conflict')
end
if status == 'offline' then
  return reply('ok')
end
return write('offline', '', '0', '')
`)

// setAvailableScript: ARGV now_ms.
var setAvailableScript = redis.NewScript(driverPrelude + `
if held(ARGV[1]) then
  return reply('conflict')
end
if status == 'available' then
  return reply('ok')
end
return write('available', '', '0', '')
`)

// createTripScript creates the trip hash at version 1 unless it exists.
// ARGV data, final ("1"/"0"), final_ttl_ms. Returns {created (1/0), ver,
// final, data} of the stored record.
var createTripScript = redis.NewScript(`
local key = KEYS[1]
local h = redis.call('HMGET', key, 'ver', 'final', 'data')
if h[1] then
  return {0, h[1], h[2] or '0', h[3] or ''}
end
redis.call('HSET', key, 'ver', '1', 'final', ARGV[2], 'data', ARGV[1])
if ARGV[2] == '1' then
  redis.call('PEXPIRE', key, ARGV[3])
end
return {1, '1', ARGV[2], ARGV[1]}
`)

// updateTripScript replaces the trip if its version is the expected one
// and it is not final. ARGV expected_ver, data, final ("1"/"0"),
// final_ttl_ms. Returns {"ok", new_ver}, {"notfound"},
// {"conflict", stored_ver} or {"final", stored_ver}.
var updateTripScript = redis.NewScript(`
local key = KEYS[1]
local h = redis.call('HMGET', key, 'ver', 'final')
if not h[1] then
  return {'notfound'}
end
if h[1] ~= ARGV[1] then
  return {'conflict', h[1]}
end
if h[2] == '1' then
  return {'final', h[1]}
end
local v = tostring(tonumber(h[1]) + 1)
redis.call('HSET', key, 'ver', v, 'final', ARGV[3], 'data', ARGV[2])
if ARGV[3] == '1' then
  redis.call('PEXPIRE', key, ARGV[4])
end
return {'ok', v}
`)

// savePositionsScript stores "lat,lng,ts,status,class" values in the
// shard's hash (the third field is the timestamp),
// keeping a stored value whose timestamp is newer. ARGV is a flat list of
// (driver_id, value, ts_ms) triples. Returns the number written.
var savePositionsScript = redis.NewScript(`
local key = KEYS[1]
local n = 0
for i = 1, #ARGV, 3 do
  local cur = redis.call('HGET', key, ARGV[i])
  local keep = false
  if cur then
    local ts = tonumber(string.match(cur, '^[^,]*,[^,]*,([^,]*)'))
    keep = ts ~= nil and ts > tonumber(ARGV[i + 2])
  end
  if not keep then
    redis.call('HSET', key, ARGV[i], ARGV[i + 1])
    n = n + 1
  end
end
return n
`)
