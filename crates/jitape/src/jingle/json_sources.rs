//! Jicofo's compact JSON source encoding, the body of
//! `<json-message xmlns='http://jitsi.org/jitmeet'>`, both ways.
//!
//! Shape: `{"sources":{"<owner>":[videoSources, videoGroups, audioSources, audioGroups?]}}`,
//! trailing arrays may be missing; a source is `{"s":ssrc,"n":name,"m":msid,"v":"d"}`.
//! In: the text (parse) or a list of [`Source`]s (build). Out: the owners' **audio** sources in
//! document order and the repair SSRCs of their `FID` groups (video is ignored), or a
//! [`JingleError`]; the JSON text. Owners that are full
//! occupant JIDs are reduced to their resource, as in the XML form.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::error::Category;

use super::error::{JingleError, shorten};
use super::model::{Source, Ssrc};
use super::xml;

/// Longest serde message quoted in an error.
const MAX_MESSAGE: usize = 160;

/// The audio part of a `json-message`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonSources {
    /// Every owner's audio sources, in document order.
    pub sources: Vec<Source>,
    /// The second SSRC of every audio `["f", primary, repair]` group.
    pub repair_ssrcs: Vec<Ssrc>,
}

/// Parses a `json-message` body into its audio sources and the repair SSRCs of its audio
/// groups.
///
/// Bodies over `max_bytes` are refused before parsing; more than `max_sources` audio sources is
/// an error. A body without a `sources` member carries no sources. Groups are optional: one
/// that is not a well-formed `["f", a, b]` is ignored.
pub fn parse_json_sources(
    text: &str,
    max_bytes: usize,
    max_sources: usize,
) -> Result<JsonSources, JingleError> {
    if text.len() > max_bytes {
        return Err(JingleError::JsonTooLarge {
            len: text.len(),
            limit: max_bytes,
        });
    }
    let message: JsonMessage = serde_json::from_str(text).map_err(|e| {
        let msg = shorten(&e.to_string(), MAX_MESSAGE);
        match e.classify() {
            Category::Data => JingleError::BadJsonSources(msg),
            Category::Syntax | Category::Eof | Category::Io => JingleError::InvalidJson(msg),
        }
    })?;
    let owners = message.sources.map(|m| m.0).unwrap_or_default();
    let total: usize = owners.iter().map(|(_, a)| a.sources.len()).sum();
    if total > max_sources {
        return Err(JingleError::TooManySources { limit: max_sources });
    }
    let mut out = Vec::with_capacity(total);
    let mut repair_ssrcs = Vec::new();
    for (owner_key, audio) in owners {
        let owner = super::model::owner_id(&owner_key);
        repair_ssrcs.extend(audio.groups.iter().filter_map(fid_repair_ssrc));
        for src in audio.sources {
            let ssrc = json_ssrc(&src.s)?;
            if owner.is_empty() {
                return Err(JingleError::MissingOwner { ssrc });
            }
            out.push(Source {
                ssrc,
                name: src.n.filter(|n| !n.is_empty()),
                owner: owner.to_owned(),
                msid: src.m.filter(|m| !m.is_empty()),
            });
        }
    }
    repair_ssrcs.truncate(max_sources);
    Ok(JsonSources {
        sources: out,
        repair_ssrcs,
    })
}

/// The repair SSRC of a JSON group `["f", primary, repair]`, if it is one.
fn fid_repair_ssrc(group: &Value) -> Option<Ssrc> {
    match group.as_array()?.as_slice() {
        [kind, primary, repair] if kind.as_str() == Some("f") => {
            json_ssrc(primary).ok()?;
            json_ssrc(repair).ok()
        }
        _ => None,
    }
}

/// SSRC from `"s"`: a JSON number (what Jicofo writes) or a decimal string.
fn json_ssrc(v: &Value) -> Result<Ssrc, JingleError> {
    let ssrc = match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => xml::decimal::<u32>(s),
        other => {
            return Err(JingleError::BadJsonSources(format!(
                "source \"s\" is not a number: {}",
                shorten(&other.to_string(), 32)
            )));
        }
    };
    match ssrc {
        Some(s) if s != 0 => Ok(Ssrc(s)),
        _ => Err(JingleError::invalid_ssrc(&match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })),
    }
}

/// Encodes sources the way Jicofo does, grouped by owner in order of first appearance, each
/// owner as `[[],[],[audio sources]]`.
pub fn to_json(sources: &[Source]) -> String {
    let mut owners: Vec<(&str, Vec<&Source>)> = Vec::new();
    for s in sources {
        match owners.iter_mut().find(|(o, _)| *o == s.owner) {
            Some((_, list)) => list.push(s),
            None => owners.push((&s.owner, vec![s])),
        }
    }
    let mut out = String::from("{\"sources\":{");
    for (i, (owner, list)) in owners.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json_string(owner));
        out.push_str(":[[],[],[");
        for (j, s) in list.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str(&format!("{{\"s\":{}", s.ssrc));
            if let Some(n) = &s.name {
                out.push_str(&format!(",\"n\":{}", json_string(n)));
            }
            if let Some(m) = &s.msid {
                out.push_str(&format!(",\"m\":{}", json_string(m)));
            }
            out.push('}');
        }
        out.push_str("]]");
    }
    out.push_str("}}");
    out
}

fn json_string(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

#[derive(Deserialize)]
struct JsonMessage {
    #[serde(default)]
    sources: Option<OwnerMap>,
}

#[derive(Deserialize)]
struct JsonSource {
    s: Value,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    m: Option<String>,
}

/// The `sources` object, owners in document order (a map would sort them).
struct OwnerMap(Vec<(String, AudioSources)>);

impl<'de> Deserialize<'de> for OwnerMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OwnerMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of owner → source lists")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OwnerMap, A::Error> {
                let mut owners = Vec::new();
                while let Some(entry) = map.next_entry::<String, AudioSources>()? {
                    owners.push(entry);
                }
                Ok(OwnerMap(owners))
            }
        }
        d.deserialize_map(V)
    }
}

/// One owner's `[videoSources, videoGroups, audioSources, audioGroups?]`: only the audio
/// members are kept; the others are skipped whatever they hold. Audio groups that are not a
/// list are ignored (they are optional).
struct AudioSources {
    sources: Vec<JsonSource>,
    groups: Vec<Value>,
}

impl<'de> Deserialize<'de> for AudioSources {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AudioSources;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array [videoSources, videoGroups, audioSources, audioGroups]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AudioSources, A::Error> {
                let _video: Option<IgnoredAny> = seq.next_element()?;
                let _video_groups: Option<IgnoredAny> = seq.next_element()?;
                let audio: Option<Vec<JsonSource>> = seq.next_element()?;
                let groups: Option<Value> = seq.next_element()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                let groups = match groups {
                    Some(Value::Array(groups)) => groups,
                    _ => Vec::new(),
                };
                Ok(AudioSources {
                    sources: audio.unwrap_or_default(),
                    groups,
                })
            }
        }
        d.deserialize_seq(V)
    }
}
