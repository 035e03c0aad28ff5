-- mod_jitape: the Prosody side of jitape (Prosody 0.12 and 13).
--
-- Load it on every MUC component whose rooms jitape records (the conference MUC and, if wanted,
-- the breakout MUC), with the option `jitape_component` naming jitape's external component, or
-- `jitape_components` naming several jitape instances (one component each): every room then
-- has one owner among the live instances (rendezvous hashing; after an owner's disconnect plus
-- `jitape_lease` seconds its rooms move). It owns, in namespace urn:jitape:prosody:1 (README.md):
--
--   events   room-created, room-destroyed, occupant-joined, occupant-left, each a
--            <message type='normal'> from the MUC host to the room owner's component domain;
--   catch-up an IQ get <rooms/> to the MUC host, answered only to the components' JIDs, listing
--            every live room the asker owns, with its occupants;
--   entry    a join from a component's domain becomes a room member (members-only rooms and
--            Jitsi's lobby admit it, a later switch to members-only does not kick it) and carries
--            the room's password. No other JID gains anything.
--
-- No hook ever raises: every handler runs under pcall and logs what went wrong.

local function import(name)
	-- Prosody 13 names its libraries prosody.*; 0.12 knows only the short names.
	local ok, lib = pcall(require, "prosody." .. name);
	if ok and lib then return lib; end
	return require(name);
end

local st = import "util.stanza";
local hashes = import "util.hashes";
local jid_util = import "util.jid";
local configmanager = import "core.configmanager";

local jid_bare, jid_host, jid_resource, jid_prep =
	jid_util.bare, jid_util.host, jid_util.resource, jid_util.prep;

local NS = "urn:jitape:prosody:1";
local MUC_NS = "http://jabber.org/protocol/muc";

-- Bounds on what is copied from other people's presences into our stanzas (jitape's XML reader
-- refuses attribute values over 8 KiB, which would cost it its connection).
local MAX_JID_ATTR = 3072;
local MAX_SHORT_ATTR = 256;
local MAX_FEATURES = 32;

-- Hook priorities (higher runs first). See README.md for where each number comes from.
local PRIO_ADMIT = -3;        -- after Jitsi's jicofo lock (8), max occupants (10), token (99),
                              -- wait-for-host (0); before Jitsi's lobby (-4), Prosody's
                              -- members-only (-5), ban (-10) and password (-20) checks
local PRIO_MARK_NEW = -1000;  -- last pre-join hook: this first presence will create the room
local PRIO_PRE_CREATE = -2000;-- after mod_muc tracked the new room (-1000)
local PRIO_CREATED = -50;     -- after Jitsi's mod_muc_meeting_id set meetingId (0)
local PRIO_JOINED = -50;
local PRIO_LEFT = 1;          -- before mod_muc destroys an emptied room (-1)
local PRIO_DESTROYED = 100;   -- before mod_muc forgets the room (0) and tombstones stop it (-10)

---------------------------------------------------------------------------------------------
-- Configuration: fail loudly.

if module:get_host_type() ~= "component" or module:get_option_string("component_module") ~= "muc" then
	error(("mod_jitape is loaded on %s, which is not a MUC component: enable it only in the "
		.. "modules_enabled of the conference MUC component(s), e.g. Component \"conference.example\" "
		.. "\"muc\" (docker-jitsi-meet: XMPP_MUC_MODULES=jitape)"):format(module.host), 0);
end

-- jitape_components = { "jitape-1.<domain>", ... } names every jitape instance; the older
-- jitape_component = "<domain>" is the same as a one-element list.
local raw_list = module:get_option_array("jitape_components");
local raw_single = module:get_option_string("jitape_component");
if raw_list and raw_single then
	error(("mod_jitape on %s: both jitape_component and jitape_components are set; keep only "
		.. "jitape_components = { %q, ... }. The module is not active."):format(module.host, raw_single), 0);
end
if raw_list == nil or #raw_list == 0 then raw_list = (raw_single and raw_single ~= "") and { raw_single } or nil; end
if raw_list == nil then
	error(("mod_jitape on %s: option jitape_component is not set; set jitape_component = "
		.. "\"<jitape's component domain>\" (the Component declared for jitape, e.g. "
		.. "\"jitape.meet.jitsi\"; docker-jitsi-meet: GLOBAL_CONFIG=...\\njitape_component = "
		.. "\"jitape.meet.jitsi\"), or jitape_components = { \"jitape-1.meet.jitsi\", ... } for "
		.. "several instances. The module is not active."):format(module.host), 0);
end
local option_name = raw_single and "jitape_component" or "jitape_components";

local components, component_set = {}, {};
for _, raw in ipairs(raw_list) do
	local domain = type(raw) == "string" and jid_prep(raw);
	if not domain or domain:find("[@/]") then
		error(("mod_jitape on %s: %s = %q is not a domain; set it to jitape's "
			.. "component domain, e.g. \"jitape.meet.jitsi\""):format(module.host, option_name, tostring(raw)), 0);
	end
	if not component_set[domain] then
		components[#components + 1], component_set[domain] = domain, true;
	end
end
-- One instance: it owns every room, as before there were several.
local single = #components == 1;

-- Only an external component may receive the events and get in: were a jitape component a
-- VirtualHost, every user of it would pass passwords and members-only.
local function check_component_declared(component)
	local kind = configmanager.rawget(component, "component_module");
	if kind == "component" then return; end
	local what;
	if kind then
		what = ("a %q component, not an external one"):format(kind);
	elseif configmanager.rawget(component, "defined") then
		what = "a VirtualHost, not an external component";
	else
		what = "not declared in the configuration";
	end
	error(("mod_jitape on %s: %s = %q is %s; declare jitape's component with "
		.. "Component %q and component_secret = \"...\" (see config/prosody/jitape.cfg.lua), "
		.. "or correct %s. The module is not active."):format(module.host, option_name,
		component, what, component, option_name), 0);
end

local function list_contains(list, name)
	if type(list) ~= "table" then return false; end
	for _, v in ipairs(list) do
		if v == name then return true; end
	end
	return false;
end

local function module_enabled_here(name)
	return list_contains(configmanager.get(module.host, "modules_enabled"), name)
		or (prosody.hosts[module.host] and prosody.hosts[module.host].modules[name] ~= nil);
end

-- Entries that cover every JID of a component: the domain, or a bare JID on it.
local function covers_component(set, component)
	if set:contains(component) then return true; end
	for item in set do
		if type(item) == "string" and jid_host(item) == component then return true; end
	end
	return false;
end

-- Jitsi modules whose decisions the module cannot change; say what the operator must set.
local function check_jitsi_neighbours(component)
	if module_enabled_here("muc_max_occupants")
		and (tonumber(module:get_option("muc_max_occupants")) or -1) > 0
		and not covers_component(module:get_option_set("muc_access_whitelist", {}), component) then
		module:log("error", "mod_muc_max_occupants is enabled on %s but muc_access_whitelist "
			.. "does not contain %q: jitape counts against muc_max_occupants and is refused "
			.. "from full rooms; add %q to muc_access_whitelist on this component",
			module.host, component, component);
	end
	if module_enabled_here("token_verification")
		and not covers_component(module:get_option_set("token_verification_allowlist", {}), component) then
		local parent = module.host:match("^[^.]+%.(.+)$");
		local strict = parent and configmanager.get(parent, "enable_domain_verification");
		module:log(strict and "error" or "warn", "mod_token_verification is enabled on %s and "
			.. "token_verification_allowlist does not contain %q: %s; add %q to "
			.. "token_verification_allowlist on this component", module.host, component,
			strict and "with enable_domain_verification jitape's token-less joins are refused"
				or "jitape passes only while enable_domain_verification stays off",
			component);
	end
end

for _, component in ipairs(components) do check_component_declared(component); end
for _, component in ipairs(components) do check_jitsi_neighbours(component); end

local lease = module:get_option_number("jitape_lease", 10);
if not lease or lease ~= lease or lease < 0 or lease > 86400 then
	error(("mod_jitape on %s: jitape_lease = %s is not a number of seconds between 0 and 86400 "
		.. "(default 10). The module is not active."):format(module.host,
		tostring(module:get_option("jitape_lease"))), 0);
end

-- Several instances: each live one is pinged every jitape_ping_interval seconds (0: never), and
-- one that has not answered within jitape_ping_timeout loses its connection (see below).
local function seconds_option(name, default, low)
	local value = module:get_option_number(name, default);
	if not value or value ~= value or value < low or value > 86400 then
		error(("mod_jitape on %s: %s = %s is not a number of seconds between %g and 86400 "
			.. "(default %g). The module is not active."):format(module.host, name,
			tostring(module:get_option(name)), low, default), 0);
	end
	return value;
end
local ping_interval = seconds_option("jitape_ping_interval", 15, 0);
local ping_timeout = seconds_option("jitape_ping_timeout", 10, 1);

local muc = module:depends("muc");

---------------------------------------------------------------------------------------------
-- State (per MUC host): which rooms jitape has been told about.

local announced = {};   -- room jid -> true once room-created went out (or the room predates us)
local created_at = {};  -- room jid -> os.time() when we saw it created
local pending = {};     -- room jid -> nick of a creator whose occupant-joined waits for room-created
local creating = setmetatable({}, { __mode = "v" }); -- room jid -> occupant whose join creates it

local function live_rooms()
	if muc.live_rooms then return muc.live_rooms(); end
	return muc.each_room(true);
end

for room in live_rooms() do
	-- Loaded into a running server (module reload): these rooms are not news.
	announced[room.jid] = true;
end

---------------------------------------------------------------------------------------------
-- `guarded` keeps a Lua error in here from ever breaking the MUC.

local function guarded(name, handler)
	return function(event)
		local ok, result = pcall(handler, event);
		if ok then return result; end
		module:log("error", "mod_jitape %s handler failed: %s", name, tostring(result));
		return nil;
	end
end

---------------------------------------------------------------------------------------------
-- Room owners. One instance owns every room (as before there were several). With several,
-- each room gets one owner when it first needs one: the live instance with the highest
-- rendezvous weight for it. Only the owner hears about the room (docs/architecture.md).

local live = {};    -- component -> true while its current session is authenticated
local leases = {};  -- component -> timer: a disconnected owner's rooms move when it fires
local owner = {};   -- room jid -> component (several instances only)

-- Weight of (room, instance): the first 52 bits of SHA-256(room .. "\0" .. instance) as a
-- number (exact in Lua 5.1's doubles and 5.4's integers; strings would compare by locale).
local function weight(room_jid, component)
	return tonumber(hashes.sha256(room_jid .. "\0" .. component, true):sub(1, 13), 16);
end

-- The live instance with the highest weight for the room (a tie: the greater name), or nil.
local function rendezvous(room_jid)
	local best, best_weight;
	for _, c in ipairs(components) do
		if live[c] then
			local w = weight(room_jid, c);
			if not best or w > best_weight or (w == best_weight and c > best) then
				best, best_weight = c, w;
			end
		end
	end
	return best;
end

local function set_owner(room, component)
	owner[room.jid] = component;
	-- Plain data: kept across a module reload and, in Prosody's room store, a restart.
	if type(room._data) == "table" then room._data.jitape_owner = component; end
end

-- Prosody drops every component when it restarts, and restores the rooms with their data
-- (`jitape_owner` included). For one lease after the module loads, a room keeps its saved
-- owner although that instance is not back yet, instead of going to whichever instance
-- connects first; then the rooms of instances still away move (`start_grace`, below).
local grace_until = require "util.time".now() + lease;
local function in_grace()
	return require "util.time".now() < grace_until;
end

-- The room's owner; a room without one gets one now (nil while no instance is live).
local function owner_of(room)
	if single then return components[1]; end
	local current = owner[room.jid];
	if current then return current; end
	local saved = type(room._data) == "table" and room._data.jitape_owner;
	-- A saved owner keeps the room while it is live, away with its lease running, or not
	-- back yet in the first lease after this module loaded (see `start_grace`).
	local waited = component_set[saved] and (live[saved] or leases[saved] or in_grace());
	current = waited and saved or rendezvous(room.jid);
	if current then set_owner(room, current); end
	return current;
end

-- Is jitape's component there to receive? (An absent component bounces every message.)
local function component_online(component)
	if not single then return live[component] == true; end
	local host = prosody.hosts[component];
	if not host or host.type ~= "component" then return false; end
	local env = host.modules and host.modules.component;
	return not (env and env.connected == false);
end

---------------------------------------------------------------------------------------------
-- Building our stanzas.

local function bounded(value, limit)
	if type(value) == "string" and value ~= "" and #value <= limit then return value; end
	return nil;
end

local function count_occupants(room)
	local n = 0;
	if type(room._occupants) == "table" then
		for _ in pairs(room._occupants) do n = n + 1; end
	else
		for _ in room:each_occupant() do n = n + 1; end
	end
	return n;
end

local function meeting_id(room)
	return bounded(room._data and room._data.meetingId, MAX_SHORT_ATTR);
end

local features_namespaces = { ["jabber:client"] = true, ["jabber:component:accept"] = true };

-- The vars of the first <features/> child of a presence (Jitsi's role markers).
local function feature_vars(presence)
	local vars = {};
	if not presence then return vars; end
	for _, child in ipairs(presence.tags) do
		if child.name == "features" and (child.attr.xmlns == nil or features_namespaces[child.attr.xmlns]) then
			for _, f in ipairs(child.tags) do
				local var = f.name == "feature" and bounded(f.attr.var, MAX_SHORT_ATTR);
				if var then
					vars[#vars + 1] = var;
					if #vars >= MAX_FEATURES then break; end
				end
			end
			break;
		end
	end
	return vars;
end

local function occupant_element(room, occupant)
	local el = st.stanza("occupant", {
		nick = bounded(jid_resource(occupant.nick), MAX_JID_ATTR);
		jid = bounded(occupant.jid, MAX_JID_ATTR);
		role = occupant.role or "none";
		affiliation = room:get_affiliation(occupant.bare_jid) or "none";
	});
	for _, var in ipairs(feature_vars(occupant:get_presence())) do
		el:add_direct_child(st.stanza("feature", { var = var }));
	end
	return el;
end

-- An event about `room` to its owner (or to `to`).
local function send_event(room, kind, occupant, others, to)
	to = to or owner_of(room);
	if not to or not component_online(to) then
		module:log("debug", "jitape component %s not connected, %s for %s not sent", tostring(to), kind, room.jid);
		return;
	end
	local event = st.stanza("event", {
		xmlns = NS;
		type = kind;
		room = room.jid;
		["meeting-id"] = meeting_id(room);
		occupants = tostring(count_occupants(room));
	});
	if occupant then
		event:add_direct_child(occupant_element(room, occupant));
	end
	for _, other in ipairs(others or {}) do
		event:add_direct_child(occupant_element(room, other));
	end
	local message = st.message({ from = module.host, to = to, type = "normal" });
	message:add_direct_child(event);
	module:send(message);
end

-- room-created goes out once per room, before any other event about it.
local function ensure_announced(room)
	if announced[room.jid] then return; end
	announced[room.jid] = true;
	send_event(room, "room-created");
	local nick = pending[room.jid];
	pending[room.jid], creating[room.jid] = nil, nil;
	local occupant = nick and room:get_occupant_by_nick(nick);
	if occupant then
		send_event(room, "occupant-joined", occupant);
	end
end

-- room jid -> the occupants (jitape's own left out) in the room when its destruction began:
-- Prosody removes them (with an occupant-left each) before `muc-room-destroyed` fires.
local destroying_with = {};

local function forget(room_jid)
	announced[room_jid], created_at[room_jid], pending[room_jid], creating[room_jid] = nil, nil, nil, nil;
	destroying_with[room_jid], owner[room_jid] = nil, nil;
end

---------------------------------------------------------------------------------------------
-- Hooks.

local is_jitape = function(jid)
	return type(jid) == "string" and component_set[jid_host(jid)] == true;
end

local role_rank = { none = 0, visitor = 1, participant = 2, moderator = 3 };

-- Entry for jitape's JIDs: membership and the room password; nothing for anyone else.
local function admit(event)
	local stanza, room, occupant = event.stanza, event.room, event.occupant;
	local from = stanza.attr.from;
	if not is_jitape(from) then return; end
	local bare = jid_bare(from);
	local affiliation = room:get_affiliation(bare);
	if affiliation == "outcast" then
		module:log("info", "%s is banned from %s; not admitting it", bare, room.jid);
		return;
	end
	if affiliation == nil or affiliation == "none" then
		local ok, err_type, err_condition = room:set_affiliation(true, bare, "member");
		if ok then
			local role = room:get_default_role("member") or "participant";
			if occupant and (role_rank[occupant.role or "none"] or 0) < (role_rank[role] or 0) then
				occupant.role = role;
			end
		else
			module:log("warn", "could not make %s a member of %s: %s/%s", bare, room.jid,
				tostring(err_type), tostring(err_condition));
		end
	end
	local password = room:get_password();
	if password and password ~= "" then
		local x = stanza:get_child("x", MUC_NS);
		if not x then
			x = st.stanza("x", { xmlns = MUC_NS });
			stanza:add_direct_child(x);
		end
		x:maptags(function(tag)
			if tag.name == "password" then return nil; end
			return tag;
		end);
		x:add_direct_child(st.stanza("password", { xmlns = MUC_NS }):text(password));
	end
end

module:hook("muc-occupant-pre-join", guarded("pre-join", admit), PRIO_ADMIT);

module:hook("muc-occupant-pre-join", guarded("pre-join", function(event)
	if event.is_new_room then
		creating[event.room.jid] = event.occupant;
	end
end), PRIO_MARK_NEW);

module:hook("muc-room-pre-create", guarded("room-pre-create", function(event)
	created_at[event.room.jid] = created_at[event.room.jid] or os.time();
end), PRIO_PRE_CREATE);

module:hook("muc-room-created", guarded("room-created", function(event)
	local room = event.room;
	created_at[room.jid] = created_at[room.jid] or os.time();
	ensure_announced(room);
end), PRIO_CREATED);

-- A room Prosody restores from storage (it saves every live room, occupants included, when it
-- stops, and restores it on first use after a restart) fires no muc-room-created and no joins
-- for the occupants it brings back: announce it and them, so jitape knows the room is alive.
module:hook("muc-room-restored", guarded("room-restored", function(event)
	local room = event.room;
	ensure_announced(room);
	for _, occupant in room:each_occupant() do
		send_event(room, "occupant-joined", occupant);
	end
end));

module:hook("muc-occupant-joined", guarded("occupant-joined", function(event)
	local room, occupant = event.room, event.occupant;
	if not announced[room.jid] and creating[room.jid] == occupant then
		-- The creator's join: Prosody fires muc-room-created right after, and Jitsi sets the
		-- meetingId there. Report both from that hook, room first.
		pending[room.jid] = occupant.nick;
		return;
	end
	ensure_announced(room);
	send_event(room, "occupant-joined", occupant);
end), PRIO_JOINED);

module:hook("muc-occupant-left", guarded("occupant-left", function(event)
	ensure_announced(event.room);
	send_event(event.room, "occupant-left", event.occupant);
end), PRIO_LEFT);

-- Who was still in when the room was destroyed tells an ended meeting ("end for everyone",
-- an owner's destroy) from a room that closed because it emptied.
module:hook("muc-pre-room-destroy", guarded("pre-room-destroy", function(event)
	local list = {};
	for _, occupant in event.room:each_occupant() do
		if not component_set[jid_host(occupant.bare_jid)] and #list < 256 then
			list[#list + 1] = occupant;
		end
	end
	destroying_with[event.room.jid] = list;
end), PRIO_DESTROYED);

module:hook("muc-room-destroyed", guarded("room-destroyed", function(event)
	local room = event.room;
	send_event(room, "room-destroyed", nil, destroying_with[room.jid]);
	forget(room.jid);
end), PRIO_DESTROYED);

---------------------------------------------------------------------------------------------
-- Instances coming and going (mod_component fires these on each component host's events).

local stopping = false; -- Prosody is shutting down: every component disconnects, nothing moves

-- Remove `from`'s occupants (left behind by its closed connection) so the new owner's join
-- does not meet them, e.g. under the same nick.
local function kick_ghosts(room, from)
	local ghosts = {};
	for _, occupant in room:each_occupant() do
		if jid_host(occupant.bare_jid) == from then ghosts[#ghosts + 1] = occupant.nick; end
	end
	for _, nick in ipairs(ghosts) do
		room:set_role(true, nick, "none", "jitape instance gone");
	end
end

-- `from`'s lease ran out: its rooms go to the live instances, each announced to its new owner
-- like a room that has just appeared.
local function take_over(from)
	local moved, orphaned, rooms = 0, 0, {};
	for room in live_rooms() do
		local saved = type(room._data) == "table" and room._data.jitape_owner or nil;
		if (owner[room.jid] or saved) == from and not (room._data and room._data.destroyed) then
			owner[room.jid] = from;
			rooms[#rooms + 1] = room;
		end
	end
	for _, room in ipairs(rooms) do
		kick_ghosts(room, from); -- while `from` still owns it: these events go nowhere
		-- A room of nothing but ghosts is destroyed by the kick (and forgotten): leave it be.
		if owner[room.jid] == from then
			local to = rendezvous(room.jid);
			set_owner(room, to);
			if not to then orphaned = orphaned + 1; else
				moved = moved + 1;
				module:log("debug", "room %s: owner %s -> %s", room.jid, from, to);
				send_event(room, "room-created", nil, nil, to);
				for _, occupant in room:each_occupant() do
					send_event(room, "occupant-joined", occupant, nil, to);
				end
			end
		end
	end
	module:log(#rooms > 0 and "info" or "debug", "jitape instance %s stayed away longer than the lease (%gs): %d room(s) of %s "
		.. "reassigned, %d wait for an instance", from, lease, moved, module.host, orphaned);
end

local function instance_up(component)
	live[component] = true;
	if leases[component] then leases[component]:stop(); leases[component] = nil; end
	module:log("info", "jitape instance %s connected (rooms of %s)", component, module.host);
end

local function instance_down(component)
	if not live[component] then return; end
	live[component] = nil;
	if single or stopping then return; end
	module:log("info", "jitape instance %s disconnected; its rooms of %s move in %gs unless it "
		.. "reconnects", component, module.host, lease);
	leases[component] = module:add_timer(lease, function()
		leases[component] = nil;
		if live[component] or stopping then return; end
		local ok, err = pcall(take_over, component);
		if not ok then module:log("error", "mod_jitape take-over failed: %s", tostring(err)); end
	end);
end

-- A machine that vanishes without closing its socket leaves Prosody a connection that looks
-- alive until TCP gives up (15-30 minutes). With several instances, each live one is pinged
-- (XEP-0199, from the MUC host); one that does not answer within jitape_ping_timeout has its
-- connection closed, which makes it a disconnect like any other: its lease starts. An error
-- answer is an answer. jitape answers pings from its router (xmpp: router/classify.rs).
local waiting_ping = {}; -- component -> true while a ping to it is unanswered
local ping_count = 0;

local function close_unanswering(component)
	local host = prosody.hosts[component];
	local env = host and host.modules and host.modules.component;
	local session = env and env.session;
	if not (live[component] and session) then return; end
	module:log("warn", "jitape instance %s did not answer a ping within %gs; closing its "
		.. "connection (its rooms move after the lease unless it reconnects)", component, ping_timeout);
	session:close({ condition = "connection-timeout", text = "no answer to mod_jitape's ping" });
end

local function ping(component)
	if waiting_ping[component] then return; end
	ping_count = ping_count + 1;
	local iq = st.iq({ type = "get", from = module.host, to = component,
		id = ("jitape-ping-%d"):format(ping_count) }):tag("ping", { xmlns = "urn:xmpp:ping" }):up();
	waiting_ping[component] = true;
	module:send_iq(iq, nil, ping_timeout):next(function()
		waiting_ping[component] = nil;
	end, function(err)
		waiting_ping[component] = nil;
		if type(err) == "table" and err.condition == "remote-server-timeout" and not stopping then
			local ok, e = pcall(close_unanswering, component);
			if not ok then module:log("error", "mod_jitape ping: %s", tostring(e)); end
		end
	end);
end

if not single and ping_interval > 0 then
	module:add_timer(ping_interval, function()
		if stopping then return; end
		for _, c in ipairs(components) do
			if live[c] then
				local ok, e = pcall(ping, c);
				if not ok then module:log("error", "mod_jitape ping: %s", tostring(e)); end
			end
		end
		return ping_interval;
	end);
end

-- Follow a component host: at load for those that exist, later ones when activated.
local attached = {}; -- component -> the host table we hooked
local function attach(component)
	local host = prosody.hosts[component];
	if not host or not component_set[component] or attached[component] == host then return; end
	attached[component] = host;
	local context = module:context(component);
	context:hook("component-authenticated", guarded("component-authenticated", function()
		instance_up(component);
	end));
	-- Also fired for a refused second connection or a failed handshake: act only for the
	-- session mod_component holds (it still holds it when this fires).
	context:hook("component-disconnected", guarded("component-disconnected", function(event)
		local env = host.modules.component;
		if env and event.session == env.session then instance_down(component); end
	end));
	live[component] = host.modules.component and host.modules.component.connected or nil;
end

for _, component in ipairs(components) do attach(component); end
-- The end of the grace after loading: the rooms of instances that have not come back move.
if not single and lease > 0 then
	module:add_timer(lease, function()
		for _, component in ipairs(components) do
			if not live[component] and not leases[component] and not stopping then
				local ok, err = pcall(take_over, component);
				if not ok then module:log("error", "mod_jitape take-over failed: %s", tostring(err)); end
			end
		end
	end);
end
module:hook_global("host-activated", guarded("host-activated", attach));
module:hook_global("host-deactivated", guarded("host-deactivated", function(component)
	if attached[component] then attached[component] = nil; instance_down(component); end
end));
module:hook_global("server-stopping", function() stopping = true; end);

---------------------------------------------------------------------------------------------
-- Catch-up: <iq type='get' to='<muc host>'><rooms xmlns='urn:jitape:prosody:1'/></iq>

-- The rooms the asking instance owns (every room, with one instance), then, with several,
-- every configured instance as this module sees it: <instance component= state= rooms=/>
-- (state live, away: disconnected with its lease still running, or down), each room another
-- instance owns as <elsewhere jid= owner=/> (an instance back after its lease learns which of
-- its recordings moved, and leaves their files to the new owner), and the lease as an
-- attribute of <rooms/> (jitape fences its writers by it).
local function rooms_reply(stanza)
	local reply = st.reply(stanza);
	local rooms = st.stanza("rooms", { xmlns = NS; lease = not single and tostring(lease) or nil });
	local elsewhere = {};
	local asker = jid_host(stanza.attr.from);
	local owned = {};
	for room in live_rooms() do
		local current = not (room._data and room._data.destroyed) and owner_of(room);
		if current then owned[current] = (owned[current] or 0) + 1; end
		if current and current == asker then
			local created = created_at[room.jid];
			local item = st.stanza("room", {
				jid = room.jid;
				["meeting-id"] = meeting_id(room);
				created = created and tostring(created) or nil;
			});
			for _, occupant in room:each_occupant() do
				item:add_direct_child(occupant_element(room, occupant));
			end
			rooms:add_direct_child(item);
		elseif current then
			elsewhere[#elsewhere + 1] = st.stanza("elsewhere", { jid = room.jid; owner = current });
		end
	end
	for _, item in ipairs(elsewhere) do rooms:add_direct_child(item); end
	for _, c in ipairs(single and {} or components) do
		local state = component_online(c) and "live" or (leases[c] and "away" or "down");
		rooms:tag("instance", { component = c; state = state; rooms = tostring(owned[c] or 0) }):up();
	end
	reply:add_direct_child(rooms);
	return reply;
end

module:hook("iq-get/host/" .. NS .. ":rooms", function(event)
	local origin, stanza = event.origin, event.stanza;
	if not is_jitape(stanza.attr.from) then
		origin.send(st.error_reply(stanza, "auth", "forbidden", "Only jitape's component may list rooms"));
		return true;
	end
	local ok, reply = pcall(rooms_reply, stanza);
	if ok then
		origin.send(reply);
	else
		module:log("error", "mod_jitape rooms query failed: %s", tostring(reply));
		origin.send(st.error_reply(stanza, "wait", "internal-server-error"));
	end
	return true;
end);

local names = table.concat(components, ", ");
module:log("info", "mod_jitape: reporting rooms and occupants of %s to %s, answering its rooms "
	.. "query, and admitting %s's JIDs as members with the room password%s", module.host, names, names,
	single and "" or (" (each room to one live instance; lease %gs; ping every %gs)"):format(lease, ping_interval));
