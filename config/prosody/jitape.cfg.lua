-- Prosody side of jitape: declare jitape's external component.
--
-- Debian / quick-install Jitsi: copy this file to /etc/prosody/conf.d/jitape.cfg.lua (or add
-- its lines to /etc/prosody/conf.avail/<your-domain>.cfg.lua) and restart Prosody.
-- docker-jitsi-meet: put it in ${CONFIG}/prosody/config/conf.d/jitape.cfg.lua and re-enable
-- component ports there (docker sets component_ports = { }), see config/jitsi/README.md.
--
-- The domain must match [xmpp] domain in jitape.toml and must not be an existing
-- VirtualHost; the secret must match [xmpp] secret (or JITAPE_XMPP_SECRET).

Component "recorder.meet.jitsi"
    component_secret = "change-me"
