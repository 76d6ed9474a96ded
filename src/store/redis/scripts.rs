//! The server-side scripts: each runs atomically in Redis, so seq assignment, the finished
//! check, fencing and retention can never interleave with another instance's writes.
//!
//! Key layout for stream `S` under prefix `P`: `P:{S}:m` (hash: epoch, status, first, last,
//! bytes, ret, wev, wage, meta, updated, fence, owner, until, seen, agg, idem, finished),
//! `P:{S}:l` (the Redis Stream; entry id `<seq>-0`, fields `t` type, `d` data, `m` time),
//! `P:running` (zset of leased streams by lease expiry), `P:fence` (fencing counter),
//! `P:idem:<hash>` (idempotency key → stream id), channel `P:n:{S}` (`<last> <status>`).

use std::sync::LazyLock;

use redis::Script;

/// KEYS: meta, idem (or ""), running, fence.
/// ARGV: stream id, epoch, meta json, ret, wev, wage, leased, instance, lease ms, prefix.
/// Returns {"NEW", fence} or {"EXISTING", stream id}.
pub static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
if KEYS[2] ~= '' then
  local existing = redis.call('GET', KEYS[2])
  if existing and redis.call('EXISTS', ARGV[10] .. ':{' .. existing .. '}:m') == 1 then
    return {'EXISTING', existing}
  end
end
redis.call('HSET', KEYS[1], 'epoch', ARGV[2], 'status', 'running', 'first', 1, 'last', 0,
  'bytes', 0, 'meta', ARGV[3], 'ret', ARGV[4], 'wev', ARGV[5], 'wage', ARGV[6], 'updated', now)
local fence = 0
if ARGV[7] == '1' then
  fence = redis.call('INCR', KEYS[4])
  local deadline = now + tonumber(ARGV[9])
  redis.call('HSET', KEYS[1], 'fence', fence, 'owner', ARGV[8], 'until', deadline)
  redis.call('ZADD', KEYS[3], deadline, ARGV[1])
end
if KEYS[2] ~= '' then
  redis.call('SET', KEYS[2], ARGV[1])
  redis.call('HSET', KEYS[1], 'idem', KEYS[2])
end
return {'NEW', tostring(fence)}
"#,
    )
});

/// Shared tail of every script that ends a stream: status, lease, retention, notification.
/// Expects `m`, `l`, `running`, `id`, `now`, `last`, `status`, `log_ttl`, `status_ttl`, `chan`.
const FINISH: &str = r#"
local function finish(m, l, running, id, now, status, log_ttl, status_ttl)
  redis.call('HSET', m, 'status', status, 'finished', now)
  redis.call('HDEL', m, 'until')
  redis.call('ZREM', running, id)
  redis.call('EXPIRE', l, log_ttl)
  redis.call('EXPIRE', m, status_ttl)
  local idem = redis.call('HGET', m, 'idem')
  if idem then redis.call('EXPIRE', idem, status_ttl) end
end
"#;

/// KEYS: meta, log, running.
/// ARGV: fence ("" = unfenced), max events, max bytes, log ttl s, status ttl s, channel,
/// stream id, too-large data json, expected last seq ("" = any), aggregate checkpoint after
/// this batch ("" = none; only with a strict seq), then (type, data, terminal
/// status or "") per event. With an expected seq, a batch that was already applied (a retry
/// after a timeout) is not applied twice, and a stale one is refused. An expected seq written
/// `=N` is strict (`append_at`): anything but last == N is `STALE`.
/// Returns {"OK"|"TOOLARGE"|"FINISHED"|"FENCED"|"CONFLICT"|"STALE"|"NOTFOUND", last, epoch,
/// status}.
pub static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{FINISH}{}",
        r#"
local m, l, running = KEYS[1], KEYS[2], KEYS[3]
local st = redis.call('HMGET', m, 'status', 'fence', 'last', 'bytes', 'ret', 'wev', 'wage', 'epoch')
if not st[1] then return {'NOTFOUND', '0', '', ''} end
if st[1] ~= 'running' then return {'FINISHED', st[3], st[8], st[1]} end
if ARGV[1] ~= '' and st[2] ~= ARGV[1] then return {'FENCED', st[3], st[8], st[1]} end
local last, bytes = tonumber(st[3]), tonumber(st[4])
if string.sub(ARGV[9], 1, 1) == '=' then
  if last ~= tonumber(string.sub(ARGV[9], 2)) then return {'STALE', st[3], st[8], st[1]} end
elseif ARGV[9] ~= '' then
  local expected = tonumber(ARGV[9])
  if last == expected + (#ARGV - 10) / 3 then return {'OK', st[3], st[8], st[1]} end
  if last ~= expected then return {'CONFLICT', st[3], st[8], st[1]} end
end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local full = st[5] == 'full'
local max_events, max_bytes = tonumber(ARGV[2]), tonumber(ARGV[3])
local result, final = 'OK', nil
local i = 11
while i <= #ARGV do
  if final then result = 'FINISHED'; break end
  local ty, data, term = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  -- One slot and its bytes stay free for the terminal event.
  if full and term == '' and (last + 2 > max_events or bytes + #data > max_bytes) then
    ty, data, term, result = 'stream.failed', ARGV[8], 'failed', 'TOOLARGE'
  end
  last = last + 1
  redis.call('XADD', l, last .. '-0', 't', ty, 'd', data, 'm', now)
  bytes = bytes + #data
  if term ~= '' then final = term end
  if result == 'TOOLARGE' then break end
  i = i + 3
end
redis.call('HSET', m, 'last', last, 'bytes', bytes, 'updated', now)
if ARGV[10] ~= '' and result == 'OK' then redis.call('HSET', m, 'agg', ARGV[10], 'aggseq', last) end
if not full then
  redis.call('XTRIM', l, 'MAXLEN', tonumber(st[6]))
  local cutoff = now - tonumber(st[7])
  for _ = 1, 100 do
    local head = redis.call('XRANGE', l, '-', '+', 'COUNT', 2)
    if #head < 2 or tonumber(head[1][2][6]) >= cutoff then break end
    redis.call('XDEL', l, head[1][1])
  end
  local first = redis.call('XRANGE', l, '-', '+', 'COUNT', 1)
  local seq = first[1] and tonumber(string.match(first[1][1], '^(%d+)')) or (last + 1)
  redis.call('HSET', m, 'first', seq)
end
local status = final or 'running'
if final then finish(m, l, running, ARGV[7], now, final, ARGV[4], ARGV[5]) end
redis.call('PUBLISH', ARGV[6], last .. ' ' .. status)
return {result, tostring(last), st[8], status}
"#
    ))
});

/// Recreates a lost log under a new epoch for the producer that holds `fence`.
/// KEYS: meta, log, running. ARGV: stream id, epoch, meta json, ret, wev, wage, fence,
/// instance, lease ms, channel. Returns 1, or 0 if the meta exists (nothing was lost).
pub static RECREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('DEL', KEYS[2])
local deadline = now + tonumber(ARGV[9])
redis.call('HSET', KEYS[1], 'epoch', ARGV[2], 'status', 'running', 'first', 1, 'last', 0,
  'bytes', 0, 'meta', ARGV[3], 'ret', ARGV[4], 'wev', ARGV[5], 'wage', ARGV[6], 'updated', now,
  'fence', ARGV[7], 'owner', ARGV[8], 'until', deadline)
redis.call('ZADD', KEYS[3], deadline, ARGV[1])
redis.call('PUBLISH', ARGV[10], '0 running')
return 1
"#,
    )
});

/// Extends many leases in one round trip (one call per lease fell behind the 15 s lease with
/// 1,000 streams on a loaded instance). KEYS: running, meta 1..n. ARGV: lease ms, then
/// fence i, stream id i for each meta key. Returns, per stream, 1 if its lease was extended,
/// 0 if it is no longer ours (or the stream ended).
pub static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('TIME')
local deadline = t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[1])
local out = {}
for i = 2, #KEYS do
  local fence, id = ARGV[2 * i - 2], ARGV[2 * i - 1]
  -- pcall: one odd key (say, of the wrong type) loses its own lease, not the whole batch's.
  local st = redis.pcall('HMGET', KEYS[i], 'status', 'fence')
  if type(st) == 'table' and not st.err and st[1] == 'running' and st[2] == fence then
    redis.call('HSET', KEYS[i], 'until', deadline)
    redis.call('ZADD', KEYS[1], deadline, id)
    out[i - 1] = 1
  else
    out[i - 1] = 0
  end
end
return out
"#,
    )
});

/// Ends a stream whose producer's lease expired: takes the fence (so the old producer can
/// never append again) and appends `stream.failed` / `producer_lost`.
/// KEYS: meta, log, running, fence. ARGV: stream id, channel, failed data json, log ttl s,
/// status ttl s. Returns 1 if it ended the stream.
pub static REAP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{FINISH}{}",
        r#"
local m, l, running = KEYS[1], KEYS[2], KEYS[3]
local st = redis.call('HMGET', m, 'status', 'until', 'last')
if st[1] ~= 'running' or not st[2] then
  redis.call('ZREM', running, ARGV[1])
  return 0
end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
if tonumber(st[2]) > now then return 0 end
redis.call('HSET', m, 'fence', redis.call('INCR', KEYS[4]))
local last = tonumber(st[3]) + 1
redis.call('XADD', l, last .. '-0', 't', 'stream.failed', 'd', ARGV[3], 'm', now)
redis.call('HSET', m, 'last', last, 'updated', now)
finish(m, l, running, ARGV[1], now, 'failed', ARGV[4], ARGV[5])
redis.call('PUBLISH', ARGV[2], last .. ' failed')
return 1
"#
    ))
});

/// Sets one field of a stream's hash only if the stream still exists (a plain HSET would
/// resurrect an expired stream as a stray hash without a TTL). KEYS: meta.
/// ARGV: field, value, [field, value ...].
pub static SET_IF_EXISTS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"#,
    )
});
