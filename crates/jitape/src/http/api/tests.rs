//! Unit tests of `api`.

use super::*;

fn req(method: &str, path: &str, auth: Option<&str>) -> Request {
    Request {
        method: method.into(),
        path: path.into(),
        authorization: auth.map(str::to_string),
    }
}

#[test]
fn routes() {
    let mucs = vec!["muc.example".to_string()];
    let r = |m, p| route(&req(m, p, None), None, &mucs);
    assert_eq!(r("GET", "/health"), Route::Health);
    assert_eq!(r("GET", "/ready"), Route::Ready);
    assert_eq!(r("GET", "/metrics?x=1"), Route::Metrics);
    assert_eq!(r("GET", "/conferences"), Route::List);
    assert_eq!(
        r("POST", "/conferences/Lesson@muc.example"),
        Route::Record("lesson@muc.example".into())
    );
    assert_eq!(
        r("DELETE", "/conferences/%5Bt1%5Droom@muc.example"),
        Route::Stop("[t1]room@muc.example".into())
    );
    // A tenant room in the spelling of its URL's MUC domain is the same room.
    assert_eq!(
        r("POST", "/conferences/room@muc.t1.example"),
        Route::Record("[t1]room@muc.example".into())
    );
    assert_eq!(r("POST", "/health"), Route::MethodNotAllowed);
    assert_eq!(
        r("PUT", "/conferences/a@muc.example"),
        Route::MethodNotAllowed
    );
    assert_eq!(r("GET", "/nope"), Route::NotFound);
    for bad in [
        "/conferences/a@other.example",
        "/conferences/muc.example",
        "/conferences/a@muc.example%2Fx",
        "/conferences/%zz",
        "/conferences/a%00@muc.example",
    ] {
        assert!(matches!(r("POST", bad), Route::BadRoom(_)), "{bad}");
    }
}

#[test]
fn the_token_is_required_when_set() {
    let mucs = vec![];
    assert_eq!(
        route(&req("GET", "/metrics", None), Some("s3"), &mucs),
        Route::Unauthorized
    );
    assert_eq!(
        route(
            &req("GET", "/metrics", Some("Bearer s4")),
            Some("s3"),
            &mucs
        ),
        Route::Unauthorized
    );
    assert_eq!(
        route(
            &req("GET", "/metrics", Some("Bearer s3x")),
            Some("s3"),
            &mucs
        ),
        Route::Unauthorized
    );
    assert_eq!(
        route(
            &req("GET", "/metrics", Some("Bearer s3")),
            Some("s3"),
            &mucs
        ),
        Route::Metrics
    );
}

#[test]
fn responses_are_well_formed_http() {
    let bytes = Response::text(401, "no\n").to_bytes();
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.starts_with("HTTP/1.1 401 Unauthorized\r\n"));
    assert!(text.contains("Content-Length: 3\r\n") && text.contains("WWW-Authenticate: Bearer"));
    assert!(text.ends_with("\r\n\r\nno\n"));
}
