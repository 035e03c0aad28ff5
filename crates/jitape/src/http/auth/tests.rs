//! Unit tests of `auth`: the token as header or cookie, the login form, its redirect, and
//! what a client without the token gets.

use axum::body::Body;
use axum::http::Request;

use super::*;
use crate::http::tests::{TOKEN, authed, send, state};

fn get(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut req = Request::builder().uri(path);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.body(Body::empty()).expect("request")
}

fn post_login(form: &str) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri("/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form.to_string()))
        .expect("request")
}

#[tokio::test]
async fn every_path_needs_the_token() {
    let s = state(Some(TOKEN));
    let wrong = format!("Bearer {TOKEN}x");
    for (method, path) in [
        ("GET", "/health"),
        ("GET", "/metrics"),
        ("GET", "/conferences"),
        ("GET", "/nope"),
        ("PUT", "/health"),
        ("POST", "/conferences/%2F"),
        ("DELETE", "/conferences/a@muc.example"),
    ] {
        for auth in ["", "Bearer s3", "s3cret", wrong.as_str(), "bearer s3cret"] {
            let mut req = Request::builder().method(method).uri(path);
            if !auth.is_empty() {
                req = req.header("authorization", auth);
            }
            let answer = send(&s, req.body(Body::empty()).expect("request")).await;
            assert_eq!(
                (answer.status, answer.body.as_str()),
                (401, "unauthorized\n"),
                "{method} {path} {auth:?}"
            );
            assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
        }
    }
}

#[tokio::test]
async fn the_token_is_taken_as_bearer_or_cookie() {
    let s = state(Some(TOKEN));
    assert_eq!(send(&s, authed("GET", "/health")).await.status, 200);
    let cookie = format!("theme=dark; {COOKIE}={TOKEN}; other=1");
    assert_eq!(
        send(&s, get("/health", &[("cookie", &cookie)]))
            .await
            .status,
        200
    );
    for wrong in [
        format!("{COOKIE}={TOKEN}x"),
        format!("{COOKIE}=s3"),
        format!("x{COOKIE}={TOKEN}"),
        format!("{COOKIE}x={TOKEN}"),
        format!("{COOKIE}="),
    ] {
        let answer = send(&s, get("/health", &[("cookie", &wrong)])).await;
        assert_eq!(answer.status, 401, "{wrong}");
    }
}

#[tokio::test]
async fn a_browser_without_the_token_gets_the_login_form() {
    let s = state(Some(TOKEN));
    let accept = "text/html,application/xhtml+xml,*/*;q=0.8";
    let answer = send(&s, get("/conferences?token=leak", &[("accept", accept)])).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        answer.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        answer
            .body
            .contains(r#"<form method="post" action="/login""#)
    );
    assert!(answer.body.contains(r#"name="next" value="/conferences""#));
    assert!(!answer.body.contains("leak"), "the query is not echoed");
    // API clients keep the plain answer.
    let api = send(&s, get("/conferences", &[("accept", "application/json")])).await;
    assert_eq!((api.status, api.body.as_str()), (401, "unauthorized\n"));
}

#[tokio::test]
async fn login_sets_the_cookie_and_returns_to_next() {
    let s = state(Some(TOKEN));
    let form = send(&s, get("/login?token=leak", &[])).await;
    assert_eq!(form.status, 200, "no token needed");
    assert!(form.body.contains(r#"name="token""#));
    assert!(form.body.contains(r#"name="next" value="/""#));
    assert!(!form.body.contains("leak"), "nothing is echoed");
    let done = send(
        &s,
        post_login(&format!("token={TOKEN}&next=%2Fconferences")),
    )
    .await;
    assert_eq!(done.status, 303);
    assert_eq!(done.header("location"), Some("/conferences"));
    let set = done.header("set-cookie").expect("cookie set");
    assert_eq!(
        set,
        format!("{COOKIE}={TOKEN}; Path=/; HttpOnly; SameSite=Strict")
    );
    // The cookie as a browser sends it back opens the API.
    let cookie = set.split(';').next().expect("pair");
    let list = send(&s, get("/conferences", &[("cookie", cookie)])).await;
    assert_eq!((list.status, list.body.as_str()), (200, "[]\n"));
}

#[tokio::test]
async fn a_wrong_login_gets_the_form_again() {
    let s = state(Some(TOKEN));
    for form in ["token=s3", "token=s3cretx&next=%2Fready", "next=%2F", ""] {
        let answer = send(&s, post_login(form)).await;
        assert_eq!(answer.status, 401, "{form}");
        assert!(answer.header("set-cookie").is_none());
        assert!(
            answer
                .body
                .contains(r#"<form method="post" action="/login""#)
        );
        assert!(!answer.body.contains("s3"), "the token is not echoed");
    }
}

#[tokio::test]
async fn login_never_redirects_off_the_server() {
    let s = state(Some(TOKEN));
    for (next, location) in [
        ("", "/"),
        ("%2F%2Fevil.example", "/"),
        ("%2F%5Cevil.example", "/"),
        ("https%3A%2F%2Fevil.example%2F", "/"),
        ("evil", "/"),
        ("%2Fa%0D%0ASet-Cookie%3A+x", "/"),
        ("%2Fconferences%3Fa%3D1", "/conferences?a=1"),
    ] {
        let answer = send(&s, post_login(&format!("token={TOKEN}&next={next}"))).await;
        assert_eq!(answer.status, 303, "{next}");
        assert_eq!(answer.header("location"), Some(location), "{next}");
    }
}

#[tokio::test]
async fn a_token_a_cookie_cannot_hold_is_escaped_in_it() {
    let token = "a b;c%d\"é";
    let s = state(Some(token));
    let form = "token=a+b%3Bc%25d%22%C3%A9";
    let done = send(&s, post_login(form)).await;
    assert_eq!(done.status, 303);
    let set = done.header("set-cookie").expect("cookie set");
    assert!(
        set.starts_with(&format!("{COOKIE}=a%20b%3Bc%25d%22%C3%A9;")),
        "{set}"
    );
    let cookie = set.split(';').next().expect("pair");
    assert_eq!(
        send(&s, get("/health", &[("cookie", cookie)])).await.status,
        200
    );
}

#[tokio::test]
async fn without_a_token_configured_everything_is_open() {
    let s = state(None);
    assert_eq!(send(&s, get("/health", &[])).await.status, 200);
    let done = send(&s, post_login("token=anything&next=%2Fready")).await;
    assert_eq!(done.status, 303);
    assert_eq!(done.header("location"), Some("/ready"));
    assert!(done.header("set-cookie").is_none());
}

#[tokio::test]
async fn a_large_login_body_is_refused() {
    let s = state(Some(TOKEN));
    let big = format!("token={}", "a".repeat(super::super::MAX_BODY));
    assert_eq!(send(&s, post_login(&big)).await.status, 413);
}

#[tokio::test]
async fn form_values_are_escaped() {
    // A local path may hold such characters; the form escapes them.
    assert_eq!(local_path(r#"/a"><script>"#), r#"/a"><script>"#);
    let s = state(Some(TOKEN));
    let req = Request::builder()
        .uri("/live/a'b&c")
        .header("accept", "text/html")
        .body(Body::empty())
        .unwrap();
    let answer = send(&s, req).await;
    assert_eq!(answer.status, 401);
    assert!(
        answer
            .body
            .contains(r#"name="next" value="/live/a&#39;b&amp;c""#),
        "{}",
        answer.body
    );
}
