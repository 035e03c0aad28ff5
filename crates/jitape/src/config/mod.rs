//! Configuration: a TOML file plus `JITAPE_<SECTION>_<KEY>` environment overrides, turned
//! into a validated [`Config`].
//!
//! In: the file's text and the process environment (both passed in, so tests need neither a
//! file nor `set_var`). Out: a `Config` or a [`ConfigError`] that names the offending key.
//! Every key, its type and its default is listed once, in [`KEYS`]; `config/jitape.toml`
//! documents the same list (a test keeps the two in step).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::types::{LateWindow, SampleRate};

/// What kind of value a key takes; decides how an environment string is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Int,
    Bool,
    /// A list of strings; in the environment, comma-separated.
    List,
    /// `"250ms"`, `"30s"`, `"5m"`, `"6h"` or an integer number of seconds.
    Duration,
}

/// One configuration key: `(section, key, kind, default as TOML text or None if required)`.
pub type KeySpec = (&'static str, &'static str, Kind, Option<&'static str>);

/// Every configuration key jitape understands.
pub const KEYS: &[KeySpec] = &[
    ("xmpp", "host", Kind::Str, Some("\"127.0.0.1\"")),
    ("xmpp", "port", Kind::Int, Some("5347")),
    ("xmpp", "domain", Kind::Str, None),
    ("xmpp", "instance", Kind::Str, Some("\"\"")),
    ("xmpp", "secret", Kind::Str, None),
    ("xmpp", "muc_domains", Kind::List, None),
    ("xmpp", "user", Kind::Str, Some("\"rec\"")),
    ("xmpp", "nick_prefix", Kind::Str, Some("\"jitape\"")),
    ("xmpp", "display_name", Kind::Str, Some("\"Recorder\"")),
    ("xmpp", "focus_nick", Kind::Str, Some("\"focus\"")),
    ("xmpp", "service_domains", Kind::List, Some("[]")),
    ("xmpp", "ping_interval", Kind::Duration, Some("\"20s\"")),
    ("xmpp", "ping_timeout", Kind::Duration, Some("\"10s\"")),
    ("xmpp", "reconnect_min", Kind::Duration, Some("\"500ms\"")),
    ("xmpp", "reconnect_max", Kind::Duration, Some("\"30s\"")),
    ("media", "bind", Kind::Str, Some("\"auto\"")),
    ("media", "advertise", Kind::List, Some("[]")),
    ("media", "opus_red", Kind::Bool, Some("true")),
    ("media", "silence_timeout", Kind::Duration, Some("\"60s\"")),
    ("recording", "dir", Kind::Str, Some("\"recordings\"")),
    ("recording", "sample_rate", Kind::Int, Some("48000")),
    ("recording", "late_window", Kind::Duration, Some("\"5s\"")),
    ("recording", "stems", Kind::Bool, Some("false")),
    ("recording", "empty_grace", Kind::Duration, Some("\"300s\"")),
    ("recording", "max_duration", Kind::Duration, Some("\"6h\"")),
    ("recording", "disk_floor", Kind::Str, Some("\"1GiB\"")),
    ("recording", "retention", Kind::Duration, Some("\"0\"")),
    ("recording", "writer_threads", Kind::Int, Some("2")),
    ("recording", "write_backlog", Kind::Duration, Some("\"3m\"")),
    (
        "recording",
        "write_backlog_total",
        Kind::Str,
        Some("\"256MiB\""),
    ),
    ("rooms", "include", Kind::List, Some("[\"*\"]")),
    ("rooms", "exclude", Kind::List, Some("[]")),
    ("rooms", "min_participants", Kind::Int, Some("2")),
    ("rooms", "lone_hold", Kind::Duration, Some("\"20s\"")),
    ("http", "bind", Kind::Str, Some("\"127.0.0.1:8091\"")),
    ("http", "token", Kind::Str, Some("\"\"")),
    ("hook", "command", Kind::Str, Some("\"\"")),
    ("hook", "args", Kind::List, Some("[]")),
    ("hook", "timeout", Kind::Duration, Some("\"120s\"")),
    ("limits", "max_conferences", Kind::Int, Some("500")),
    ("limits", "max_sources", Kind::Int, Some("1000")),
    ("limits", "max_stanza_size", Kind::Str, Some("\"1MiB\"")),
    ("limits", "iq_rate", Kind::Int, Some("20")),
    ("limits", "iq_burst", Kind::Int, Some("100")),
    ("limits", "max_participants", Kind::Int, Some("1000")),
    ("limits", "max_presences", Kind::Int, Some("100")),
];

/// Keys whose values are never echoed in errors.
const SECRET_KEYS: &[&str] = &["xmpp.secret", "http.token"];

/// A configuration that passed validation.
#[derive(Clone, PartialEq)]
pub struct Config {
    pub xmpp: XmppConfig,
    pub media: MediaConfig,
    pub recording: RecordingConfig,
    pub rooms: RoomsConfig,
    pub hook: Option<HookConfig>,
    pub http: HttpConfig,
    pub limits: LimitsConfig,
}

/// `[limits]`: bounds that keep one hostile room or peer from hurting the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Conferences recorded at once; further rooms wait until one ends.
    pub max_conferences: usize,
    /// Audio sources (SSRCs) one conference records; more are refused.
    pub max_sources: usize,
    /// Bytes in one inbound stanza; a larger one is dropped (and answered if an IQ).
    pub max_stanza_size: usize,
    /// IQ requests per second one occupant may send us (the focus is exempt).
    pub iq_rate: u32,
    /// Burst of IQ requests allowed above the rate.
    pub iq_burst: u32,
    /// Participants one conference keeps an entry (track, stem, sidecar entry) for; later
    /// ones share one `overflow` entry.
    pub max_participants: usize,
    /// Presence intervals (stays) kept per participant; later ones extend the last.
    pub max_presences: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_conferences: 500,
            max_sources: 1000,
            max_stanza_size: 1 << 20,
            iq_rate: 20,
            iq_burst: 100,
            max_participants: 1000,
            max_presences: 100,
        }
    }
}

/// `[http]`: health, readiness, metrics and the admin API.
#[derive(Clone, PartialEq)]
pub struct HttpConfig {
    /// Where to listen; `None` disables the server.
    pub bind: Option<std::net::SocketAddr>,
    /// Bearer token; required when `bind` is not a loopback address.
    pub token: Option<Secret>,
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("bind", &self.bind)
            .field("token", &self.token)
            .finish()
    }
}

/// `[hook]`: a command run after each conference's files are final.
#[derive(Debug, Clone, PartialEq)]
pub struct HookConfig {
    pub command: PathBuf,
    pub args: Vec<String>,
    pub timeout: Duration,
}

/// `[xmpp]`: how to reach Prosody and who we are there.
#[derive(Clone, PartialEq)]
pub struct XmppConfig {
    pub host: String,
    pub port: u16,
    /// The component's domain, e.g. `jitape.meet.jitsi`.
    pub domain: String,
    /// This instance's name in `/conferences` and `/metrics` (`xmpp.instance`, by default the
    /// domain: with several instances each is its own component, `jitape-N.<domain>`).
    pub instance: String,
    /// The component secret. Never printed: see the `Debug` impl.
    pub secret: Secret,
    /// MUC services whose rooms are conferences, e.g. `muc.meet.jitsi`.
    pub muc_domains: Vec<String>,
    /// Localpart of the JID jitape uses in rooms (`rec@jitape.meet.jitsi/...`).
    pub user: String,
    pub nick_prefix: String,
    pub display_name: String,
    pub focus_nick: String,
    /// Domains whose occupants are services, not humans (Jibri, Jigasi, the hidden domain).
    pub service_domains: Vec<String>,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
}

/// `[media]`: where ICE listens.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaConfig {
    /// IP for ICE host candidates; `None` means "auto": the local address that routes to
    /// the XMPP host, resolved at start.
    pub bind: Option<IpAddr>,
    pub advertise: Vec<IpAddr>,
    /// Advertise `http://jitsi.org/opus-red`: where Jicofo enables RED, the bridge then
    /// forwards RED (RFC 2198) and jitape fills lost packets from it (docs/protocol.md).
    pub opus_red: bool,
    /// A connected session with sources from which no RTP nor RTCP arrived this long is
    /// taken as broken and replaced.
    pub silence_timeout: Duration,
}

/// `[recording]`: where and how files are written.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingConfig {
    pub dir: PathBuf,
    pub sample_rate: SampleRate,
    pub late_window: LateWindow,
    /// Also write one FLAC per participant on the same timeline.
    pub stems: bool,
    /// Below this many free bytes no new recording starts (open ones keep writing).
    pub disk_floor: u64,
    /// Delete finalized recordings older than this (`None`: keep forever).
    pub retention: Option<Duration>,
    /// End a recording after no human has been present this long.
    pub empty_grace: Duration,
    /// End a recording after this long, whatever happens.
    pub max_duration: Duration,
    /// Threads that encode and write every recording's files (started once).
    pub writer_threads: usize,
    /// Audio one recording may have waiting for a slow disk before new audio becomes silence.
    pub write_backlog: Duration,
    /// PCM bytes all recordings together may have waiting for the disk.
    pub write_backlog_total: usize,
}

/// `[rooms]`: which rooms are recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomsConfig {
    /// Glob patterns (`*`, `?`) over the room JID; a room is recorded if it matches an
    /// include pattern and no exclude pattern.
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// Jicofo's `jicofo.conference.min-participants`: jitape is in a room only while at
    /// least this many others (humans or services) are.
    pub min_participants: usize,
    /// How long jitape stays with fewer others than that (but some) before leaving.
    pub lone_hold: Duration,
}

impl RoomsConfig {
    /// Whether `room` (a bare room JID, lowercase) is to be recorded.
    pub fn records(&self, room: &str) -> bool {
        self.include.iter().any(|p| glob(p, room)) && !self.exclude.iter().any(|p| glob(p, room))
    }
}

/// Case-insensitive glob match with `*` (any run) and `?` (one character).
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A secret string whose `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Debug for XmppConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XmppConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("domain", &self.domain)
            .field("instance", &self.instance)
            .field("secret", &self.secret)
            .field("muc_domains", &self.muc_domains)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("xmpp", &self.xmpp)
            .field("media", &self.media)
            .field("recording", &self.recording)
            .field("rooms", &self.rooms)
            .field("hook", &self.hook)
            .field("http", &self.http)
            .field("limits", &self.limits)
            .finish()
    }
}

/// Why a configuration was refused. Every variant names the key (`section.key`) at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("config file is not valid TOML: {0}")]
    Syntax(String),
    #[error("unknown key `{0}` (see config/jitape.toml for the list)")]
    UnknownKey(String),
    #[error("missing required key `{0}`")]
    Missing(String),
    #[error("key `{key}`: {reason}")]
    Invalid { key: String, reason: String },
    #[error(
        "environment variable `{var}` does not name a config key (expected JITAPE_<SECTION>_<KEY>)"
    )]
    UnknownEnv { var: String },
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// Environment variables with the `JITAPE_` prefix that are not config keys.
const NON_KEY_ENV: &[&str] = &["JITAPE_CONFIG", "JITAPE_LOG"];

/// The secret keys (`xmpp.secret`, `http.token`) that the TOML text itself sets (empty if
/// it does not parse: `load` reports that).
pub fn secrets_in(toml_text: &str) -> Vec<&'static str> {
    let Ok(values) = parse_file(toml_text) else {
        return Vec::new();
    };
    SECRET_KEYS
        .iter()
        .copied()
        .filter(|k| values.contains_key(*k))
        .collect()
}

/// Load a configuration from TOML text and environment pairs.
pub fn load(
    toml_text: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    build(&effective_values(toml_text, env)?)
}

/// The configuration jitape runs with, as TOML: every key, whether the file, the
/// environment or the default set it, in the order of [`KEYS`], a section at a time. A
/// secret that is set shows as `"<redacted>"`. Errors as [`load`] (it validates the same way).
pub fn effective_toml(
    toml_text: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<String, ConfigError> {
    let values = effective_values(toml_text, env)?;
    build(&values)?;
    let mut out = String::new();
    let mut section = "";
    for (s, key, _, _) in KEYS {
        if *s != section {
            if !section.is_empty() {
                out.push('\n');
            }
            out.push_str(&format!("[{s}]\n"));
            section = s;
        }
        let name = format!("{s}.{key}");
        let value = &values[&name];
        let shown = match value {
            toml::Value::String(v) if SECRET_KEYS.contains(&name.as_str()) && !v.is_empty() => {
                "\"<redacted>\"".to_string()
            }
            other => other.to_string(),
        };
        out.push_str(&format!("{key} = {shown}\n"));
    }
    Ok(out)
}

/// Every key's value: the file's, overridden by the environment, else the default.
fn effective_values(
    toml_text: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Values, ConfigError> {
    let mut values = parse_file(toml_text)?;
    apply_env(&mut values, env)?;
    check_kinds(&values)?;
    for (section, key, _, default) in KEYS {
        if let std::collections::btree_map::Entry::Vacant(slot) =
            values.entry(format!("{section}.{key}"))
        {
            match default {
                Some(text) => {
                    slot.insert(parse_toml_value(text).map_err(|e| invalid(key, e))?);
                }
                None => return Err(ConfigError::Missing(format!("{section}.{key}"))),
            }
        }
    }
    Ok(values)
}

type Values = BTreeMap<String, toml::Value>;

fn parse_toml_value(text: &str) -> Result<toml::Value, String> {
    let table: toml::Table = format!("v = {text}").parse().map_err(|e| format!("{e}"))?;
    table.get("v").cloned().ok_or_else(|| "empty value".into())
}

fn spec(name: &str) -> Option<&'static KeySpec> {
    KEYS.iter()
        .find(|(s, k, _, _)| name.split_once('.') == Some((s, k)))
}

/// Keys that changed name; the old one still works.
const RENAMED: &[(&str, &str)] = &[("recording.playout_delay", "recording.late_window")];

fn renamed(name: String) -> String {
    RENAMED
        .iter()
        .find(|(old, _)| *old == name)
        .map_or(name, |(_, new)| (*new).to_string())
}

fn parse_file(text: &str) -> Result<Values, ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax(e.message().to_string()))?;
    let mut values = Values::new();
    for (section, body) in table {
        let toml::Value::Table(body) = body else {
            return Err(ConfigError::UnknownKey(section));
        };
        for (key, value) in body {
            let name = renamed(format!("{section}.{key}"));
            if spec(&name).is_none() {
                return Err(ConfigError::UnknownKey(name));
            }
            values.insert(name, value);
        }
    }
    Ok(values)
}

/// Every key present has the kind its spec says (before missing keys are reported, so the
/// first error is about what the user wrote).
fn check_kinds(values: &Values) -> Result<(), ConfigError> {
    for (name, value) in values {
        let Some((_, _, kind, _)) = spec(name) else {
            return Err(ConfigError::UnknownKey(name.clone()));
        };
        let ok = match (kind, value) {
            (Kind::Str, toml::Value::String(_)) => true,
            (Kind::Int, toml::Value::Integer(_)) => true,
            (Kind::Bool, toml::Value::Boolean(_)) => true,
            (Kind::List, toml::Value::Array(items)) => items.iter().all(|i| i.is_str()),
            (Kind::Duration, toml::Value::String(s)) => parse_duration(s).is_ok(),
            (Kind::Duration, toml::Value::Integer(i)) => *i >= 0,
            _ => false,
        };
        if !ok {
            let expected = match kind {
                Kind::Str => "a string",
                Kind::Int => "an integer",
                Kind::Bool => "true or false",
                Kind::List => "a list of strings",
                Kind::Duration => "a duration like 250ms, 30s, 5m, 6h",
            };
            let got = if SECRET_KEYS.contains(&name.as_str()) {
                value.type_str().to_string()
            } else {
                value.to_string()
            };
            return Err(invalid(name, format!("expected {expected}, got {got}")));
        }
    }
    Ok(())
}

fn apply_env(
    values: &mut Values,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (var, raw) in env {
        let Some(rest) = var.strip_prefix("JITAPE_") else {
            continue;
        };
        if NON_KEY_ENV.contains(&var.as_str()) {
            continue;
        }
        let mut rest = rest.to_ascii_lowercase();
        if let Some((_, new)) = RENAMED
            .iter()
            .find(|(old, _)| old.replace('.', "_") == rest)
        {
            rest = new.replace('.', "_");
        }
        let found = KEYS.iter().find(|(s, k, _, _)| rest == format!("{s}_{k}"));
        let Some((section, key, kind, _)) = found else {
            return Err(ConfigError::UnknownEnv { var });
        };
        let name = format!("{section}.{key}");
        let value = match kind {
            Kind::Str | Kind::Duration => toml::Value::String(raw),
            Kind::Int => toml::Value::Integer(
                raw.trim()
                    .parse()
                    .map_err(|_| invalid(&name, format!("{var}: expected an integer")))?,
            ),
            Kind::Bool => toml::Value::Boolean(match raw.trim() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                _ => return Err(invalid(&name, format!("{var}: expected true or false"))),
            }),
            Kind::List => toml::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.to_string()))
                    .collect(),
            ),
        };
        values.insert(name, value);
    }
    Ok(())
}

/// Parse a size: `"1GiB"`, `"500MB"`, `"64k"` (decimal and binary units) or bare bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a size like 500MB or 1GiB"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1e12,
        "tib" => 1024f64.powi(4),
        other => return Err(format!("unknown size unit `{other}` in `{text}`")),
    };
    let bytes = n * factor;
    if !bytes.is_finite() || !(0.0..=1.8e19).contains(&bytes) {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(bytes as u64)
}

/// Parse `"250ms"`, `"30s"`, `"5m"`, `"6h"`, `"1d"` (or a bare number of seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 250ms, 30s, 5m, 6h"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        other => return Err(format!("unknown duration unit `{other}` in `{text}`")),
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

struct Reader<'a>(&'a Values);

impl Reader<'_> {
    fn raw(&self, name: &str) -> Result<&toml::Value, ConfigError> {
        self.0
            .get(name)
            .ok_or_else(|| ConfigError::Missing(name.to_string()))
    }
    fn str(&self, name: &str) -> Result<String, ConfigError> {
        match self.raw(name)? {
            toml::Value::String(s) => Ok(s.clone()),
            other => Err(invalid(
                name,
                format!("expected a string, got {}", other.type_str()),
            )),
        }
    }
    fn nonempty(&self, name: &str) -> Result<String, ConfigError> {
        let s = self.str(name)?;
        if s.trim().is_empty() {
            return Err(invalid(name, "must not be empty"));
        }
        Ok(s)
    }
    fn int(&self, name: &str, range: std::ops::RangeInclusive<i64>) -> Result<i64, ConfigError> {
        match self.raw(name)? {
            toml::Value::Integer(i) if range.contains(i) => Ok(*i),
            toml::Value::Integer(i) => Err(invalid(
                name,
                format!("{i} is outside {}..={}", range.start(), range.end()),
            )),
            other => Err(invalid(
                name,
                format!("expected an integer, got {}", other.type_str()),
            )),
        }
    }
    fn list(&self, name: &str) -> Result<Vec<String>, ConfigError> {
        match self.raw(name)? {
            toml::Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s.clone()),
                    other => Err(invalid(
                        name,
                        format!("expected a list of strings, found {}", other.type_str()),
                    )),
                })
                .collect(),
            other => Err(invalid(
                name,
                format!("expected a list, got {}", other.type_str()),
            )),
        }
    }
    fn boolean(&self, name: &str) -> Result<bool, ConfigError> {
        match self.raw(name)? {
            toml::Value::Boolean(b) => Ok(*b),
            other => Err(invalid(
                name,
                format!("expected true or false, got {}", other.type_str()),
            )),
        }
    }
    fn duration(&self, name: &str) -> Result<Duration, ConfigError> {
        match self.raw(name)? {
            toml::Value::String(s) => parse_duration(s).map_err(|e| invalid(name, e)),
            toml::Value::Integer(i) if *i >= 0 => Ok(Duration::from_secs(*i as u64)),
            other => Err(invalid(
                name,
                format!("expected a duration, got {}", other.type_str()),
            )),
        }
    }
    fn ip(&self, name: &str, text: &str) -> Result<IpAddr, ConfigError> {
        text.trim()
            .parse()
            .map_err(|_| invalid(name, format!("`{text}` is not an IP address")))
    }
}

fn valid_domain(name: &str, d: &str) -> Result<String, ConfigError> {
    let d = d.trim().to_ascii_lowercase();
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_');
    if !ok {
        return Err(invalid(name, format!("`{d}` is not a domain name")));
    }
    Ok(d)
}

/// An instance name: shown in JSON and as a metric label, so a short plain token.
fn valid_instance(name: &str) -> Result<String, ConfigError> {
    let ok = name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_');
    if !ok {
        return Err(invalid(
            "xmpp.instance",
            "use at most 64 letters, digits, '.', '-' and '_' (or leave it empty for xmpp.domain)",
        ));
    }
    Ok(name.to_string())
}

fn hook(r: &Reader<'_>) -> Result<Option<HookConfig>, ConfigError> {
    let command = r.str("hook.command")?;
    if command.trim().is_empty() {
        return Ok(None);
    }
    let timeout = r.duration("hook.timeout")?;
    if timeout < Duration::from_secs(1) {
        return Err(invalid("hook.timeout", "must be at least 1s"));
    }
    Ok(Some(HookConfig {
        command: PathBuf::from(command.trim()),
        args: r.list("hook.args")?,
        timeout,
    }))
}

fn http(r: &Reader<'_>) -> Result<HttpConfig, ConfigError> {
    let bind_text = r.str("http.bind")?;
    let bind = match bind_text.trim() {
        "" | "off" => None,
        text => Some(text.parse::<std::net::SocketAddr>().map_err(|_| {
            invalid(
                "http.bind",
                format!("`{text}` is not an address like 127.0.0.1:8091 (or \"off\")"),
            )
        })?),
    };
    let token = r.str("http.token")?;
    let token = (!token.trim().is_empty()).then(|| Secret(token.trim().to_string()));
    if bind.is_some_and(|a| !a.ip().is_loopback()) && token.is_none() {
        return Err(invalid(
            "http.token",
            "required when http.bind is not a loopback address (the admin API can stop recordings)",
        ));
    }
    Ok(HttpConfig { bind, token })
}

fn build(values: &Values) -> Result<Config, ConfigError> {
    let r = Reader(values);
    let muc_domains = r
        .list("xmpp.muc_domains")?
        .iter()
        .map(|d| valid_domain("xmpp.muc_domains", d))
        .collect::<Result<Vec<_>, _>>()?;
    if muc_domains.is_empty() {
        return Err(invalid("xmpp.muc_domains", "needs at least one MUC domain"));
    }
    let user = r.nonempty("xmpp.user")?;
    if !user
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(invalid(
            "xmpp.user",
            "use letters, digits, '-' and '_' only",
        ));
    }
    let nick_prefix = r.nonempty("xmpp.nick_prefix")?;
    // mod_muc_resource_validate: ^[a-zA-Z0-9][a-zA-Z0-9_]*$
    let nick_ok = nick_prefix.starts_with(|c: char| c.is_ascii_alphanumeric())
        && nick_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !nick_ok || nick_prefix.len() > 32 {
        return Err(invalid(
            "xmpp.nick_prefix",
            "must match ^[a-zA-Z0-9][a-zA-Z0-9_]*$ (Jitsi rejects other nicks), at most 32 chars",
        ));
    }
    let domain = valid_domain("xmpp.domain", &r.nonempty("xmpp.domain")?)?;
    let instance = match r.str("xmpp.instance")?.trim() {
        "" => domain.clone(),
        name => valid_instance(name)?,
    };
    let xmpp = XmppConfig {
        host: r.nonempty("xmpp.host")?,
        port: r.int("xmpp.port", 1..=65535)? as u16,
        domain,
        instance,
        secret: Secret(r.nonempty("xmpp.secret")?),
        muc_domains,
        user,
        nick_prefix,
        display_name: r.str("xmpp.display_name")?,
        focus_nick: r.nonempty("xmpp.focus_nick")?,
        service_domains: r
            .list("xmpp.service_domains")?
            .iter()
            .map(|d| valid_domain("xmpp.service_domains", d))
            .collect::<Result<Vec<_>, _>>()?,
        ping_interval: r.duration("xmpp.ping_interval")?,
        ping_timeout: r.duration("xmpp.ping_timeout")?,
        reconnect_min: r.duration("xmpp.reconnect_min")?,
        reconnect_max: r.duration("xmpp.reconnect_max")?,
    };
    if xmpp.ping_interval < Duration::from_secs(1) {
        return Err(invalid("xmpp.ping_interval", "must be at least 1s"));
    }
    if xmpp.reconnect_max < xmpp.reconnect_min {
        return Err(invalid(
            "xmpp.reconnect_max",
            "must be >= xmpp.reconnect_min",
        ));
    }
    let bind_text = r.nonempty("media.bind")?;
    let bind = match bind_text.trim() {
        "auto" => None,
        text => Some(r.ip("media.bind", text)?),
    };
    if bind.is_some_and(|ip| ip.is_unspecified()) {
        return Err(invalid(
            "media.bind",
            "must be a concrete IP (it becomes the ICE host candidate) or \"auto\"",
        ));
    }
    let advertise = r
        .list("media.advertise")?
        .iter()
        .map(|s| r.ip("media.advertise", s))
        .collect::<Result<Vec<_>, _>>()?;
    let sample_rate = r.int("recording.sample_rate", 8000..=48000)? as u32;
    let sample_rate = SampleRate::try_from(sample_rate)
        .map_err(|e| invalid("recording.sample_rate", e.to_string()))?;
    let late_window = LateWindow::try_from(r.duration("recording.late_window")?)
        .map_err(|e| invalid("recording.late_window", e.to_string()))?;
    let dir = r.nonempty("recording.dir")?;
    let empty_grace = r.duration("recording.empty_grace")?;
    let max_duration = r.duration("recording.max_duration")?;
    if max_duration < Duration::from_secs(60) {
        return Err(invalid("recording.max_duration", "must be at least 1m"));
    }
    let write_backlog = r.duration("recording.write_backlog")?;
    if write_backlog < Duration::from_secs(5) || write_backlog > Duration::from_secs(3600) {
        return Err(invalid(
            "recording.write_backlog",
            "must be between 5s and 1h",
        ));
    }
    let write_backlog_total = parse_size(&r.str("recording.write_backlog_total")?)
        .map_err(|e| invalid("recording.write_backlog_total", e))?;
    if !(16 << 20..=64 << 30).contains(&write_backlog_total) {
        return Err(invalid(
            "recording.write_backlog_total",
            "must be between 16MiB and 64GiB",
        ));
    }
    let patterns = |key: &str| -> Result<Vec<String>, ConfigError> {
        let list = r.list(key)?;
        if list.iter().any(|p| p.trim().is_empty() || p.len() > 512) {
            return Err(invalid(
                key,
                "patterns must be non-empty and at most 512 characters",
            ));
        }
        Ok(list.iter().map(|p| p.trim().to_lowercase()).collect())
    };
    Ok(Config {
        xmpp,
        media: MediaConfig {
            bind,
            advertise,
            opus_red: r.boolean("media.opus_red")?,
            silence_timeout: {
                let t = r.duration("media.silence_timeout")?;
                if t < Duration::from_secs(2) {
                    return Err(invalid("media.silence_timeout", "must be at least 2s"));
                }
                t
            },
        },
        recording: RecordingConfig {
            dir: PathBuf::from(dir),
            sample_rate,
            late_window,
            stems: r.boolean("recording.stems")?,
            disk_floor: parse_size(&r.str("recording.disk_floor")?)
                .map_err(|e| invalid("recording.disk_floor", e))?,
            retention: Some(r.duration("recording.retention")?).filter(|d| !d.is_zero()),
            empty_grace,
            max_duration,
            writer_threads: r.int("recording.writer_threads", 1..=64)? as usize,
            write_backlog,
            write_backlog_total: write_backlog_total as usize,
        },
        rooms: RoomsConfig {
            include: patterns("rooms.include")?,
            exclude: patterns("rooms.exclude")?,
            min_participants: r.int("rooms.min_participants", 1..=1000)? as usize,
            lone_hold: r.duration("rooms.lone_hold")?,
        },
        hook: hook(&r)?,
        http: http(&r)?,
        limits: limits(&r)?,
    })
}

fn limits(r: &Reader<'_>) -> Result<LimitsConfig, ConfigError> {
    let max_stanza_size = parse_size(&r.str("limits.max_stanza_size")?)
        .map_err(|e| invalid("limits.max_stanza_size", e))?;
    if !(64 << 10..=64 << 20).contains(&max_stanza_size) {
        return Err(invalid(
            "limits.max_stanza_size",
            "must be between 64KiB and 64MiB (a 500-source session-initiate is ~300KB)",
        ));
    }
    Ok(LimitsConfig {
        max_conferences: r.int("limits.max_conferences", 1..=100_000)? as usize,
        max_sources: r.int("limits.max_sources", 1..=100_000)? as usize,
        max_stanza_size: max_stanza_size as usize,
        iq_rate: r.int("limits.iq_rate", 1..=100_000)? as u32,
        iq_burst: r.int("limits.iq_burst", 1..=1_000_000)? as u32,
        max_participants: r.int("limits.max_participants", 2..=100_000)? as usize,
        max_presences: r.int("limits.max_presences", 1..=100_000)? as usize,
    })
}

#[cfg(test)]
mod tests;
