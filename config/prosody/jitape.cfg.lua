-- Prosody side of jitape: declare jitape's external component.
--
-- Debian / quick-install Jitsi: copy this file to /etc/prosody/conf.d/jitape.cfg.lua (or add
-- its lines to /etc/prosody/conf.avail/<your-domain>.cfg.lua), put your domain in the name
-- (jitape.<your domain>) and restart Prosody. Prosody's default component port (5347 on
-- loopback) is enough when jitape runs on the same host.
-- docker-jitsi-meet: put it in ${CONFIG}/prosody/config/conf.d/jitape.cfg.lua; component
-- connections are re-enabled with GLOBAL_CONFIG (docker writes component_ports = { }), see
-- config/jitsi/env.example.
--
-- The domain must match [xmpp] domain in jitape.toml and must not be an existing
-- VirtualHost (Prosody refuses a Component with a VirtualHost's name: not recorder.<domain>,
-- Jibri's hidden domain on Debian, nor docker's XMPP_HIDDEN_DOMAIN); the secret must match
-- [xmpp] secret (or JITAPE_XMPP_SECRET).

Component "jitape.meet.jitsi"
    component_secret = "change-me"
