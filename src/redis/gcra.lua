-- The arithmetic of a bucket shared through Redis: a generic cell rate algorithm (GCRA).
--
-- KEYS[1] holds the theoretical arrival time (TAT): the instant, in whole microseconds of
-- Redis TIME, at which the bucket's schedule of reservations ends. A missing key, a TAT in
-- the past, or a value that is not a number is an empty bucket. Every write makes the key
-- expire once its schedule has ended, after which a missing key says the same.
--
-- ARGV[1]: the operation: "reserve", "give_back", "settle" or "peek".
-- ARGV[2]: microseconds of schedule per unit of amount, as a decimal (it may have a
--          fraction; a reservation's length is rounded up to a whole microsecond).
-- ARGV[3]: the burst tolerance: how far past now the schedule may end for a reservation
--          to be granted at once, in whole microseconds (what a full bucket takes to leak,
--          rounded down).
-- Then, by operation:
--   reserve    pairs of an amount and a timeout in whole microseconds (-1 for none), in
--              the order the requests came. Each gets two integers back: its wait in
--              microseconds and the TAT its reservation ended the schedule at (the token
--              that names it); or -1 and the wait it would have had, past its timeout, in
--              which case nothing is written for it.
--              Last comes one more integer: how far the schedule reaches past now, in
--              microseconds, once the batch is reserved (0 if it does not).
--   give_back  an amount and its token: what is left of the reservation (the part of it the
--              schedule has not yet passed) is taken off, if that is safe (see below).
--              Returns 1 if it was, 0 if the slot is kept.
--   settle     actual minus estimated cost: a debt (positive) lengthens the schedule at
--              once; a refund (negative) shortens it, if that is safe. Returns 1 if
--              applied, 0 if a refund was kept.
--   peek       nothing. Returns how far the schedule reaches past now, in microseconds
--              (0 if it does not). Writes nothing.
--
-- Shortening the schedule is safe only when no reservation depends on where it ends:
-- when it still ends where this reservation ended it (nothing was reserved after it), or
-- when every reservation on it is due by now. Otherwise a new reservation could take a
-- slot that a later one already holds. And only what lies ahead of now can be taken off:
-- the part of a reservation that the schedule has passed has leaked, as a grant's would.
-- Giving back nothing is always safe.
--
-- Only integers are returned, and timestamps are passed to Redis as numbers, never as
-- strings: Lua prints only 14 significant digits. Redis 7 replicates the effects of a
-- script, not the script, so calling TIME is allowed.

local operation = ARGV[1]
local per_unit = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local stored = tonumber(redis.call('GET', KEYS[1]))
local tat = now
if stored then
  tat = math.max(stored, now)
end

local function write(ends)
  -- PXAT is in whole milliseconds: the key outlives its schedule by under a millisecond.
  redis.call('SET', KEYS[1], ends, 'PXAT', math.floor(ends / 1000) + 1)
end

local function all_due()
  return tat - tolerance <= now
end

if operation == 'reserve' then
  local answers = {}
  local start = tat
  for i = 4, #ARGV, 2 do
    local ends = tat + math.ceil(tonumber(ARGV[i]) * per_unit)
    local timeout = tonumber(ARGV[i + 1])
    local wait = math.max(ends - tolerance - now, 0)
    if timeout >= 0 and wait > timeout then
      answers[#answers + 1] = -1
      answers[#answers + 1] = wait
    else
      tat = ends
      answers[#answers + 1] = wait
      answers[#answers + 1] = ends
    end
  end
  if tat > start then
    write(tat)
  end
  answers[#answers + 1] = math.max(tat - now, 0)
  return answers
elseif operation == 'give_back' then
  local length = math.ceil(tonumber(ARGV[4]) * per_unit)
  local token = tonumber(ARGV[5])
  if token <= now or tat <= now then
    return 0 -- the schedule has passed the reservation: there is nothing left to take off
  end
  if stored == token or all_due() then
    write(math.max(tat - math.min(length, token - now), now))
    return 1
  end
  return 0
elseif operation == 'settle' then
  local difference = tonumber(ARGV[4])
  if difference > 0 then
    write(tat + math.ceil(difference * per_unit))
    return 1
  elseif difference == 0 or tat <= now then
    return 1 -- nothing to settle, or an empty bucket, which a refund leaves empty
  elseif all_due() then
    write(math.max(tat - math.floor(-difference * per_unit), now))
    return 1
  end
  return 0
elseif operation == 'peek' then
  return tat - now
end
return redis.error_reply('unknown operation ' .. operation)
