-- Test stand-in for Jitsi's mod_muc_meeting_id: sets room._data.meetingId in a
-- muc-room-created hook at the default priority (0), as jitsi-meet's module does, so the tests
-- can check that mod_jitape's room-created event carries it.
local jid_split = require "util.jid".split;

module:hook("muc-room-created", function(event)
	local node = jid_split(event.room.jid);
	event.room._data.meetingId = "mid-" .. (node or "host");
end);
