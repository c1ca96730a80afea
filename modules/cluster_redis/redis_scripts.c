/* redis_scripts.c - the two Lua scripts cluster_redis runs in Redis (EVALSHA). Registration
 * and unregistration are each one atomic script, so that deciding whether an entry may be
 * taken over, writing it and publishing the change can never interleave with another node's.
 * SPDX-License-Identifier: Apache-2.0 */
#include "cluster_redis.h"

/* Entries are keyed by the device's UUID and FQDN together (<prefix>dev:<uuid>:<fqdn>, fqdn
 * "-" for none): two machines that share a UUID (some OEMs ship duplicates) and register
 * different names are two entries, and a device that reconnects elsewhere supersedes its own
 * entry only. <prefix>uuid:<uuid> is a hash of the FQDNs registered with that UUID (to their
 * node; for the UUID rule below: a small hash costs Redis far less than a set),
 * <prefix>nodedevs:<node> the set of a node's entry ids (<uuid>:<fqdn>), <prefix>fqdn:<fqdn>
 * the UUID of the entry that holds the name. */

/* Register one device: KEYS dev key, fqdn key; ARGV uuid, fqdn ("-"), ports, node, session,
 * connected_ms, peer, lease_ms (not used any more), prefix, channel, account token ("-":
 * none), NameConflict policy. Unless the policy is "latest", a registration never takes what
 * another node whose lease is alive holds for another account (an entry with our UUID) or
 * for another device (our FQDN): {'conflict', node, session, 'uuid'|'fqdn', holder uuid},
 * nothing written (docs/cluster.md). Otherwise our entry is taken over only by a newer
 * session (connected_ms, then node and session) or when its node's lease is gone; returns
 * {status, old node, old session}, status new|refresh|ports|supersede|stale. A session that
 * registers another FQDN leaves its old entry. Changes are published on the channel in the
 * same atomic step. Entries have no expiry of their own: they live as long as their node's
 * lease (the node's set lists them for the cleanup once it is gone), so a heartbeat costs one
 * command per node, not one per device. */
const char cr_register_lua[] =
    "local P = ARGV[9]\n"
    "local function live(node)\n"
    "  return redis.call('EXISTS', P .. 'node:' .. node) == 1\n"
    "end\n"
    "local function drop(uuid, f)\n"
    "  redis.call('DEL', P .. 'dev:' .. uuid .. ':' .. f)\n"
    "  redis.call('HDEL', P .. 'uuid:' .. uuid, f)\n"
    "  if f ~= '-' and redis.call('GET', P .. 'fqdn:' .. f) == uuid then\n"
    "    redis.call('DEL', P .. 'fqdn:' .. f)\n"
    "  end\n"
    "end\n"
    "local strict = ARGV[12] ~= 'latest'\n"
    "local ukey, id = P .. 'uuid:' .. ARGV[1], ARGV[1] .. ':' .. ARGV[2]\n"
    "local same_uuid = redis.call('HKEYS', ukey)\n"
    "for _, f in ipairs(same_uuid) do\n"
    "  local o = redis.call('HMGET', P .. 'dev:' .. ARGV[1] .. ':' .. f, 'node', 'session', 'acct')\n"
    "  if strict and o[1] and o[1] ~= ARGV[4] and o[3] and ARGV[11] ~= '-' and\n"
    "     o[3] ~= ARGV[11] and live(o[1]) then\n"
    "    return {'conflict', o[1], o[2], 'uuid', ARGV[1]}\n"
    "  end\n"
    "end\n"
    "if strict and ARGV[2] ~= '-' then\n"
    "  local other = redis.call('GET', KEYS[2])\n"
    "  if other and other ~= ARGV[1] then\n"
    "    local o = redis.call('HMGET', P .. 'dev:' .. other .. ':' .. ARGV[2], 'node', 'session')\n"
    "    if o[1] and o[1] ~= ARGV[4] and live(o[1]) then\n"
    "      return {'conflict', o[1], o[2], 'fqdn', other}\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local cur = redis.call('HMGET', KEYS[1], 'node', 'session', 'connected_ms', 'ports')\n"
    "local st = 'new'\n"
    "if cur[1] then\n"
    "  if cur[1] == ARGV[4] and cur[2] == ARGV[5] then\n"
    "    if cur[4] == ARGV[3] then st = 'refresh' else st = 'ports' end\n"
    "  else\n"
    "    local mine, theirs = tonumber(ARGV[6]), tonumber(cur[3]) or 0\n"
    "    local newer = mine > theirs or (mine == theirs and\n"
    "      ARGV[4] .. ' ' .. ARGV[5] > cur[1] .. ' ' .. cur[2])\n"
    "    if not newer and live(cur[1]) then\n"
    "      return {'stale', cur[1], cur[2]}\n"
    "    end\n"
    "    st = 'supersede'\n"
    "    redis.call('SREM', P .. 'nodedevs:' .. cur[1], id)\n"
    "  end\n"
    "end\n"
    "for _, f in ipairs(same_uuid) do\n"
    "  if f ~= ARGV[2] then\n"
    "    local o = redis.call('HMGET', P .. 'dev:' .. ARGV[1] .. ':' .. f, 'node', 'session')\n"
    "    if o[1] == ARGV[4] and o[2] == ARGV[5] then\n"
    "      drop(ARGV[1], f)\n"
    "      redis.call('SREM', P .. 'nodedevs:' .. ARGV[4], ARGV[1] .. ':' .. f)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if ARGV[2] ~= '-' then\n"
    "  local other, take = redis.call('GET', KEYS[2]), true\n"
    "  if other and other ~= ARGV[1] then\n"
    "    local o = redis.call('HMGET', P .. 'dev:' .. other .. ':' .. ARGV[2], 'connected_ms',\n"
    "      'node', 'session')\n"
    "    if o[1] and (tonumber(o[1]) > tonumber(ARGV[6]) or (o[1] == ARGV[6] and\n"
    "        o[2] .. ' ' .. o[3] > ARGV[4] .. ' ' .. ARGV[5])) then take = false end\n"
    "  end\n"
    "  if take then redis.call('SET', KEYS[2], ARGV[1]) end\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'uuid', ARGV[1], 'fqdn', ARGV[2], 'ports', ARGV[3],\n"
    "  'node', ARGV[4], 'session', ARGV[5], 'connected_ms', ARGV[6], 'peer', ARGV[7],\n"
    "  'stamp', ARGV[6] .. '.' .. ARGV[5])\n"
    "if ARGV[11] ~= '-' then redis.call('HSET', KEYS[1], 'acct', ARGV[11])\n"
    "else redis.call('HDEL', KEYS[1], 'acct') end\n"
    "redis.call('HSET', ukey, ARGV[2], ARGV[4])\n"
    "redis.call('SADD', P .. 'nodedevs:' .. ARGV[4], id)\n"
    "if st ~= 'refresh' then\n"
    "  local kind, acct = 'connect', ''\n"
    "  if st == 'ports' then kind = 'ports' end\n"
    "  if ARGV[11] ~= '-' then acct = ' ' .. ARGV[11] end\n"
    "  redis.call('PUBLISH', ARGV[10], kind .. ' ' .. ARGV[4] .. ' ' .. ARGV[5] .. ' ' ..\n"
    "    ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[6] .. acct)\n"
    "end\n"
    "return {st, cur[1] or '', cur[2] or ''}\n";

/* Unregister: KEYS dev key, fqdn key, the node's set, the UUID's hash; ARGV uuid, fqdn, node,
 * session, channel. Only an entry that is still ours (node and session) is deleted; 1 if it
 * was. */
const char cr_unregister_lua[] =
    "local cur = redis.call('HMGET', KEYS[1], 'node', 'session')\n"
    "if cur[1] ~= ARGV[3] or cur[2] ~= ARGV[4] then return 0 end\n"
    "redis.call('DEL', KEYS[1])\n"
    "redis.call('SREM', KEYS[3], ARGV[1] .. ':' .. ARGV[2])\n"
    "redis.call('HDEL', KEYS[4], ARGV[2])\n"
    "if ARGV[2] ~= '-' and redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) "
    "end\n"
    "redis.call('PUBLISH', ARGV[5], 'disconnect ' .. ARGV[3] .. ' ' .. ARGV[4] .. ' ' ..\n"
    "  ARGV[1] .. ' ' .. ARGV[2])\n"
    "return 1\n";

/* Clean up after a node whose lease is gone: ARGV prefix, node, channel. Each entry in its set
 * that it still holds is deleted (with the FQDN key naming it and its place in the UUID's hash)
 * and a disconnect published; then the set. Nothing when the node's lease is back (it
 * re-registers everything itself on finding its lease was lost, so deleting is always safe,
 * never needed then). Returns how many entries went, or -1 when the lease is back. Any node
 * may run it, several at once: it is idempotent. */
const char cr_cleanup_lua[] =
    "if redis.call('EXISTS', ARGV[1] .. 'node:' .. ARGV[2]) == 1 then return -1 end\n"
    "local set, n = ARGV[1] .. 'nodedevs:' .. ARGV[2], 0\n"
    "for _, id in ipairs(redis.call('SMEMBERS', set)) do\n"
    "  local k = ARGV[1] .. 'dev:' .. id\n"
    "  local cur = redis.call('HMGET', k, 'node', 'session', 'fqdn', 'uuid')\n"
    "  if cur[1] == ARGV[2] and cur[4] then\n"
    "    local f, uuid = cur[3] or '-', cur[4]\n"
    "    redis.call('DEL', k)\n"
    "    redis.call('HDEL', ARGV[1] .. 'uuid:' .. uuid, f)\n"
    "    if f ~= '-' and redis.call('GET', ARGV[1] .. 'fqdn:' .. f) == uuid then\n"
    "      redis.call('DEL', ARGV[1] .. 'fqdn:' .. f)\n"
    "    end\n"
    "    redis.call('PUBLISH', ARGV[3], 'disconnect ' .. ARGV[2] .. ' ' .. (cur[2] or '0') ..\n"
    "      ' ' .. uuid .. ' ' .. f)\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "redis.call('DEL', set)\n"
    "return n\n";
