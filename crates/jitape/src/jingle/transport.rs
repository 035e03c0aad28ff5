//! The ICE-UDP transport (`urn:xmpp:jingle:transports:ice-udp:1`) both ways: XML ⇄
//! [`IceTransport`] with its DTLS fingerprints, candidates, `rtcp-mux`, Jitsi's `web-socket` and
//! the `ice-generation` restart tag.
//!
//! In: a `<transport>` element (parse) or an [`IceTransport`] (build). Out: the model or a
//! [`JingleError`]; the `<transport>` element. A candidate is one optional way to reach the
//! bridge, so one jitape cannot use is skipped, never a reason to refuse the session: an
//! unknown `protocol` (legacy JVB's `ssltcp`) or `type`, or an address that is not a literal
//! IP (a hostname, an mDNS name, a scoped IPv6 link-local `fe80::…%eth0`); a `rel-addr` that is
//! not a literal IP is dropped. What is malformed (a missing attribute, a number that is not a
//! strict decimal in range) is still an error. TCP candidates are kept ([`Protocol::Tcp`]).

use std::net::IpAddr;

use minidom::Element;

use super::error::JingleError;
use super::model::{Candidate, CandidateType, Fingerprint, IceTransport, Protocol, Setup};
use super::ns;
use super::xml::{self, BuilderExt};

/// Parses `<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'>`.
///
/// `ufrag` and `pwd` are required; at most `max_candidates` candidates are accepted.
pub fn parse_transport(el: &Element, max_candidates: usize) -> Result<IceTransport, JingleError> {
    let ufrag = xml::required(el, "transport", "ufrag")?.to_owned();
    let pwd = xml::required(el, "transport", "pwd")?.to_owned();
    let ice_generation = xml::number(el, "transport", "ice-generation")?;
    let mut t = IceTransport {
        ufrag,
        pwd,
        ice_generation,
        ..IceTransport::default()
    };
    for child in el.children() {
        if child.is("fingerprint", ns::DTLS) {
            t.fingerprints.push(parse_fingerprint(child)?);
        } else if child.is("candidate", ns::ICE_UDP) {
            if t.candidates.len() >= max_candidates {
                return Err(JingleError::TooManyCandidates {
                    limit: max_candidates,
                });
            }
            if let Some(c) = parse_candidate(child)? {
                t.candidates.push(c);
            }
        } else if child.is("rtcp-mux", ns::ICE_UDP) {
            t.rtcp_mux = true;
        } else if child.is("web-socket", ns::COLIBRI) && t.web_socket.is_none() {
            t.web_socket = xml::optional(child, "url").map(str::to_owned);
        }
    }
    Ok(t)
}

fn parse_fingerprint(el: &Element) -> Result<Fingerprint, JingleError> {
    let hash = xml::required(el, "fingerprint", "hash")?.to_owned();
    let setup = match xml::optional(el, "setup") {
        // Absent in very old dialects: the offerer's neutral role.
        None => Setup::Actpass,
        Some(v) => parse_setup(v).ok_or_else(|| JingleError::invalid("fingerprint", "setup", v))?,
    };
    let value = el.text().trim().to_owned();
    if value.is_empty() {
        return Err(JingleError::MissingElement {
            parent: "fingerprint",
            element: "text",
        });
    }
    Ok(Fingerprint { hash, setup, value })
}

fn parse_setup(v: &str) -> Option<Setup> {
    Some(match v {
        "actpass" => Setup::Actpass,
        "active" => Setup::Active,
        "passive" => Setup::Passive,
        "holdconn" => Setup::Holdconn,
        _ => return None,
    })
}

fn setup_str(s: Setup) -> &'static str {
    match s {
        Setup::Actpass => "actpass",
        Setup::Active => "active",
        Setup::Passive => "passive",
        Setup::Holdconn => "holdconn",
    }
}

/// Parses one `<candidate/>`: `None` if it is well-formed but unusable (see the module doc).
pub fn parse_candidate(el: &Element) -> Result<Option<Candidate>, JingleError> {
    const E: &str = "candidate";
    let component = xml::required_number(el, E, "component")?;
    let foundation = xml::required(el, E, "foundation")?.to_owned();
    let generation = xml::number(el, E, "generation")?.unwrap_or(0);
    let ip = xml::required(el, E, "ip")?;
    let port = xml::required_number(el, E, "port")?;
    let priority = xml::required_number(el, E, "priority")?;
    let rel_port = xml::number(el, E, "rel-port")?;
    let network = xml::number(el, E, "network")?;
    let proto = xml::required(el, E, "protocol")?;
    let ty = xml::required(el, E, "type")?;
    let skip = |why: &str| {
        tracing::debug!(
            foundation,
            ip,
            protocol = proto,
            r#type = ty,
            why,
            "candidate skipped"
        );
        Ok(None)
    };
    let protocol = match proto.to_ascii_lowercase().as_str() {
        "udp" => Protocol::Udp,
        "tcp" => Protocol::Tcp,
        _ => return skip("unknown protocol"),
    };
    let kind = match ty {
        "host" => CandidateType::Host,
        "srflx" => CandidateType::Srflx,
        "prflx" => CandidateType::Prflx,
        "relay" => CandidateType::Relay,
        _ => return skip("unknown type"),
    };
    let Ok(ip) = ip.parse::<IpAddr>() else {
        return skip("not a literal IP address");
    };
    let rel_addr = xml::optional(el, "rel-addr").and_then(|v| v.parse::<IpAddr>().ok());
    Ok(Some(Candidate {
        component,
        foundation,
        generation,
        id: xml::optional(el, "id").map(str::to_owned),
        ip,
        port,
        priority,
        protocol,
        kind,
        rel_addr,
        rel_port: rel_addr.and(rel_port),
        network,
    }))
}

/// Builds `<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'>` in Jicofo's child order:
/// fingerprints, `rtcp-mux`, `web-socket`, candidates.
pub fn build_transport(t: &IceTransport) -> Element {
    let mut b = Element::builder("transport", ns::ICE_UDP)
        .set("ufrag", t.ufrag.as_str())
        .set("pwd", t.pwd.as_str())
        .set_opt("ice-generation", t.ice_generation.map(|g| g.to_string()));
    for f in &t.fingerprints {
        b = b.append(
            Element::builder("fingerprint", ns::DTLS)
                .set("hash", f.hash.as_str())
                .set("setup", setup_str(f.setup))
                .append(f.value.as_str())
                .build(),
        );
    }
    if t.rtcp_mux {
        b = b.append(Element::bare("rtcp-mux", ns::ICE_UDP));
    }
    if let Some(url) = &t.web_socket {
        b = b.append(
            Element::builder("web-socket", ns::COLIBRI)
                .set("url", url.as_str())
                .build(),
        );
    }
    b.append_all(t.candidates.iter().map(build_candidate))
        .build()
}

/// Builds one `<candidate/>` (attributes as in the reference stanzas).
pub fn build_candidate(c: &Candidate) -> Element {
    Element::builder("candidate", ns::ICE_UDP)
        .set("component", c.component.to_string())
        .set("foundation", c.foundation.as_str())
        .set("generation", c.generation.to_string())
        .set_opt("id", c.id.as_deref())
        .set("ip", c.ip.to_string())
        .set_opt("network", c.network.map(|n| n.to_string()))
        .set("port", c.port.to_string())
        .set("priority", c.priority.to_string())
        .set(
            "protocol",
            match c.protocol {
                Protocol::Udp => "udp",
                Protocol::Tcp => "tcp",
            },
        )
        .set(
            "type",
            match c.kind {
                CandidateType::Host => "host",
                CandidateType::Srflx => "srflx",
                CandidateType::Prflx => "prflx",
                CandidateType::Relay => "relay",
            },
        )
        .set_opt("rel-addr", c.rel_addr.map(|a| a.to_string()))
        .set_opt("rel-port", c.rel_port.map(|p| p.to_string()))
        .build()
}
