// docker-jitsi-meet: ${CONFIG}/web/custom-config.js (then `docker compose restart web`).
// The web container appends this file to the config.js it generates, after everything else,
// at every start; so this line wins whatever ENABLE_RECORDING / ENABLE_TRANSCRIPTIONS say.
// Browsers then hide occupants whose JID domain is exactly this one: no tile, not counted.
// There is only one hidden domain: if Jibri or the Jigasi transcriber run on this stack, do
// not add this line (they need the hidden domain themselves; jitape then shows as a phone
// participant named "Recorder"). See README.md next to this file.
config.hiddenDomain = 'jitape.meet.jitsi';
