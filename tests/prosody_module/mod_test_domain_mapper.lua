-- Test stand-in for jitsi-meet's mod_muc_domain_mapper (tenant rooms, "subdomains"), written
-- for jitape's tests from the mapper's behaviour as docs/protocol.md ("Tenant rooms") records
-- it, with its upstream sources. Not upstream code.
--
-- A tenant room lives in the MUC as [tenant]room@<prefix>.<base> (internal form); clients name
-- it room@<prefix>.<tenant>.<base> (virtual form). Like the mapper, this module rewrites
-- addresses with the same hooks at the same priorities, and therefore has the same limits:
--
--   * on every host (those that exist at load time, and every later one through the global
--     host-activated event: VirtualHosts and Components alike), the nine events
--     {message,presence,iq}/{host,bare,full} at priority 0 rewrite `from` internal -> virtual.
--     mod_component forwards to an external component at priority -1, so a component receives
--     routed room traffic in the virtual form;
--   * on every host, the nine pre-{message,presence,iq}/{host,bare,full} events at priority 0
--     rewrite `to` virtual -> internal. Prosody fires pre-* events only for sessions with a
--     full_jid (c2s), never for a component: a component's stanza to the virtual form is
--     routed as is (and bounces, or is dropped, as it is no local host);
--   * every session initialised through util.filters after load (c2s, BOSH, s2s; never a
--     component connection) gets a stanzas/out filter at priority 0 rewriting `from`
--     internal -> virtual and `to` virtual -> internal.
--
-- Options (global or on the host it is loaded on), as upstream: muc_mapper_domain_base (no
-- default: without it nothing is hooked) and muc_mapper_domain_prefix (default "conference").
-- Not reproduced: the mapper's table of IQs to the MUC service's virtual domain (keyed by
-- stanza id) and its rewriting of the <conference room=...> element; the tests do not use them.

local jid = require "util.jid";
local filters = require "util.filters";

local base = module:get_option_string("muc_mapper_domain_base");
if not base then
	module:log("warn", "muc_mapper_domain_base is not set: no tenant rooms");
	return;
end
local prefix = module:get_option_string("muc_mapper_domain_prefix", "conference");
local muc_domain = prefix .. "." .. base;

local function escape(s) return (s:gsub("%p", "%%%0")); end
-- <prefix>.<one label>.<base>; anchored (the upstream pattern is not, which matters only for
-- domains these tests never use).
local tenant_host = "^" .. escape(prefix) .. "%.([^%.]+)%." .. escape(base) .. "$";

-- virtual -> internal: room@<prefix>.<tenant>.<base>/res becomes [tenant]room@<prefix>.<base>/res
local function to_internal(address)
	local node, host, resource = jid.split(address);
	local tenant = host and node and host:match(tenant_host);
	if not tenant then return address; end
	return jid.join("[" .. tenant .. "]" .. node, muc_domain, resource);
end

-- internal -> virtual: [tenant]room@<prefix>.<base>/res becomes room@<prefix>.<tenant>.<base>/res
local function to_virtual(address)
	local node, host, resource = jid.split(address);
	if host ~= muc_domain or not node then return address; end
	local tenant, room = node:match("^%[([^%]]+)%](.+)$");
	if not tenant then return address; end
	return jid.join(room, prefix .. "." .. tenant .. "." .. base, resource);
end

local function rewrite_from(event)
	local stanza = event.stanza;
	if stanza.attr.from then stanza.attr.from = to_virtual(stanza.attr.from); end
end

local function rewrite_to(event)
	local stanza = event.stanza;
	if stanza.attr.to then stanza.attr.to = to_internal(stanza.attr.to); end
end

local kinds = { message = true, presence = true, iq = true };

local function filter_out(stanza)
	if kinds[stanza.name] and not stanza.skipMapping then
		if stanza.attr.to then stanza.attr.to = to_internal(stanza.attr.to); end
		if stanza.attr.from then stanza.attr.from = to_virtual(stanza.attr.from); end
	end
	return stanza;
end

local function filter_session(session)
	filters.add_filter(session, "stanzas/out", filter_out, 0);
end

local function on_host(host)
	local context = module:context(host);
	for kind in pairs(kinds) do
		for _, to_type in ipairs({ "host", "bare", "full" }) do
			context:hook(kind .. "/" .. to_type, rewrite_from, 0);
			context:hook("pre-" .. kind .. "/" .. to_type, rewrite_to, 0);
		end
	end
	module:log("debug", "tenant room addresses are rewritten on %s", host);
end

function module.load()
	filters.add_filter_hook(filter_session);
end

function module.unload()
	filters.remove_filter_hook(filter_session);
end

for host in pairs(prosody.hosts) do on_host(host); end
module:hook_global("host-activated", on_host);
module:log("info", "test domain mapper: %s.<tenant>.%s <-> [tenant]room@%s", prefix, base, muc_domain);
