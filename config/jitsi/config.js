// Debian / quick-install: add at the end of /etc/jitsi/meet/<your domain>-config.js
// (after the `var config = { ... };` object), with your domain.
// Browsers then hide occupants whose JID domain is exactly this one: no tile, not counted.
// There is only one hidden domain: if Jibri or the Jigasi transcriber run on this server,
// keep their line (Jibri's guide: config.hiddenDomain = "recorder.<your domain>") instead;
// jitape then shows as a phone participant named "Recorder". See README.md next to this file.
config.hiddenDomain = 'jitape.meet.example';
