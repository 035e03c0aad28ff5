//! Unit tests of `conn`.

use super::*;

#[test]
fn handshake_is_sha1_hex_of_id_and_secret_case_insensitive() {
    // sha1("sid" + "123456") as in xmpp-parsers' own component test.
    let ok: Element = "<handshake xmlns='jabber:component:accept'>9ACCEC263AB84A43C6037CCF7CD48CB1D3F6DF8E</handshake>"
            .parse()
            .expect("xml");
    assert!(handshake_ok(&ok, "sid", "123456"));
    assert!(!handshake_ok(&ok, "sid", "wrong"));
    let with_child: Element = "<handshake xmlns='jabber:component:accept'><x/></handshake>"
        .parse()
        .expect("xml");
    assert!(!handshake_ok(&with_child, "sid", "123456"));
}
