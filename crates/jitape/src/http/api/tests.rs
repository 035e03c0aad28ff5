//! Unit tests of `api`: the room a path names (pure), and every endpoint driven through the
//! whole app in process.

use super::*;
use crate::http::tests::{TOKEN, authed, send, state};

#[test]
fn rooms_are_read_from_the_raw_segment() {
    let mucs = vec!["muc.example".to_string()];
    let room = |raw| parse_room(raw, &mucs);
    assert_eq!(room("Lesson@muc.example"), Ok("lesson@muc.example".into()));
    assert_eq!(
        room("%5Bt1%5Droom@muc.example"),
        Ok("[t1]room@muc.example".into())
    );
    // A tenant room in the spelling of its URL's MUC domain is the same room.
    assert_eq!(
        room("room@muc.t1.example"),
        Ok("[t1]room@muc.example".into())
    );
    for bad in [
        "a@other.example",
        "muc.example",
        "a@muc.example%2Fx",
        "a@muc.example/x",
        "%zz",
        "a%00@muc.example",
        "",
    ] {
        assert_eq!(room(bad), Err(BadRoom(bad.into())), "{bad}");
    }
    assert_eq!(room(&"x".repeat(300)), Err(BadRoom("x".repeat(200))));
}

#[tokio::test]
async fn the_endpoints_answer() {
    let s = state(Some(TOKEN));
    let health = send(&s, authed("GET", "/health")).await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    assert_eq!(
        health.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let ready = send(&s, authed("GET", "/ready")).await;
    assert_eq!(ready.status, 503, "nothing connected yet");
    assert_eq!(ready.header("content-type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_str(&ready.body).expect("json");
    assert_eq!(json["xmpp_connected"], false);
    let metrics = send(&s, authed("GET", "/metrics?x=1")).await;
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.header("content-type"),
        Some(crate::metrics::CONTENT_TYPE)
    );
    assert!(metrics.body.contains("jitape_conferences_active"));
    for path in ["/conferences", "/conferences/"] {
        let list = send(&s, authed("GET", path)).await;
        assert_eq!((list.status, list.body.as_str()), (200, "[]\n"), "{path}");
    }
    // Which instance answers, even with nothing to list.
    s.metrics
        .instance
        .set("jitape-2.muc.example".into())
        .unwrap();
    let list = send(&s, authed("GET", "/conferences")).await;
    assert_eq!(
        list.header("x-jitape-instance"),
        Some("jitape-2.muc.example")
    );
    let metrics = send(&s, authed("GET", "/metrics")).await;
    assert!(
        metrics
            .body
            .contains("jitape_instance_info{instance=\"jitape-2.muc.example\"} 1"),
        "{}",
        metrics.body
    );
}

#[tokio::test]
async fn rooms_are_recorded_and_stopped() {
    let s = state(Some(TOKEN));
    let json = |body: &str| serde_json::from_str::<serde_json::Value>(body).expect("json");
    let started = send(&s, authed("POST", "/conferences/Lesson@muc.example")).await;
    assert_eq!(started.status, 202);
    let body = json(&started.body);
    assert_eq!(
        (body["room"].as_str(), body["status"].as_str()),
        (Some("lesson@muc.example"), Some("recording"))
    );
    let tenant = send(&s, authed("POST", "/conferences/%5Bt1%5Droom@muc.example")).await;
    assert_eq!(tenant.status, 202);
    assert_eq!(json(&tenant.body)["room"], "[t1]room@muc.example");
    let again = send(&s, authed("POST", "/conferences/busy@muc.example")).await;
    assert_eq!(again.status, 200);
    assert_eq!(json(&again.body)["status"], "already recording");
    let stop = send(&s, authed("DELETE", "/conferences/lesson@muc.example")).await;
    assert_eq!(stop.status, 404);
    assert_eq!(json(&stop.body)["status"], "not recording");
}

#[tokio::test]
async fn bad_rooms_are_400_with_the_segment_as_it_came() {
    let s = state(Some(TOKEN));
    for raw in [
        "a@other.example",
        "a@muc.example%2Fx",
        "a@muc.example/x",
        "%zz",
        "a%00@muc.example",
    ] {
        let answer = send(&s, authed("POST", &format!("/conferences/{raw}"))).await;
        assert_eq!(answer.status, 400, "{raw}");
        assert_eq!(
            answer.body,
            format!("`{raw}` is not a room on a configured MUC domain (room@muc.domain)\n")
        );
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_get_plain_text() {
    let s = state(Some(TOKEN));
    // (`/` belongs to the pages: a redirect to the live view.)
    for path in ["/nope", "/health/x", "/conference", "/recordings/x"] {
        let answer = send(&s, authed("GET", path)).await;
        assert_eq!((answer.status, answer.body.as_str()), (404, "not found\n"));
    }
    for (method, path) in [
        ("POST", "/health"),
        ("DELETE", "/metrics"),
        ("POST", "/conferences"),
        ("POST", "/conferences/"),
        ("PUT", "/conferences/a@muc.example"),
        ("GET", "/conferences/a@muc.example"),
        ("PUT", "/login"),
    ] {
        let answer = send(&s, authed(method, path)).await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (405, "method not allowed\n"),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn no_answer_is_cached() {
    let s = state(Some(TOKEN));
    let anonymous = |path: &str| {
        axum::http::Request::builder()
            .uri(path)
            .body(axum::body::Body::empty())
            .expect("request")
    };
    for (req, status) in [
        (authed("GET", "/health"), 200),
        (authed("GET", "/ready"), 503),
        (authed("GET", "/nope"), 404),
        (authed("POST", "/health"), 405),
        (authed("POST", "/conferences/%2F"), 400),
        (anonymous("/health"), 401),
        (anonymous("/login"), 200),
    ] {
        let answer = send(&s, req).await;
        assert_eq!(answer.status, status);
        assert_eq!(answer.header("cache-control"), Some("no-store"), "{status}");
    }
}
