//! Unit tests of this module.

use super::*;

#[test]
fn heads_parse_incrementally_and_refuse_garbage() {
    let full = b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer abc\r\n\r\n";
    assert_eq!(parse_head(&full[..20]), Ok(None));
    let req = parse_head(full).unwrap().unwrap();
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("GET", "/metrics")
    );
    assert_eq!(req.authorization.as_deref(), Some("Bearer abc"));
    assert!(parse_head(b"\x00\x01 garbage\r\n\r\n").is_err());
}
