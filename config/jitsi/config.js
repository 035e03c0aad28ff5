// Debian / quick-install: in /etc/jitsi/meet/<domain>-config.js.
// Hide jitape from the participant list (occupants on this domain are not shown).
// There is only one hidden domain: if Jibri/Jigasi already use one, either give jitape's
// component that name's sibling and accept a visible "Recorder" participant (arguably good
// for consent), or leave this as it is.
config.hiddenDomain = 'recorder.meet.example';
