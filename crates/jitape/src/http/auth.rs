//! Who may use the HTTP server: with a token configured, every request but the login form
//! must carry it, as `Authorization: Bearer <token>` (scripts, Prometheus) or as the
//! `jitape_token` cookie the login form sets (browsers).
//!
//! In: the request's headers, or the login form's fields. Out: the request passed on, or a
//! 401 (`unauthorized`, or the login form for a client that accepts HTML), or after a
//! correct login a 303 with the cookie. Tokens are compared in constant time and never
//! logged, nor echoed: the form carries only the path to return to.

use axum::Form;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tracing::debug;

use super::HttpState;
use super::pages::html::{self, Nav, esc, seg};

/// The cookie that carries the token.
pub const COOKIE: &str = "jitape_token";

/// The login form (reachable without the token).
pub fn routes() -> Router<HttpState> {
    Router::new().route("/login", get(form).post(login))
}

/// The layer in front of every guarded route: pass the request on if it carries the token.
pub async fn require_token(State(state): State<HttpState>, req: Request, next: Next) -> Response {
    let Some(token) = state.token.as_ref() else {
        return next.run(req).await;
    };
    if presented(req.headers()).any(|given| same(&given, token.expose())) {
        return next.run(req).await;
    }
    if wants_html(req.headers()) {
        return page(StatusCode::UNAUTHORIZED, local_path(req.uri().path()));
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "unauthorized\n",
    )
        .into_response()
}

/// The tokens a request presents: its bearer token and its `jitape_token` cookies.
fn presented(headers: &HeaderMap) -> impl Iterator<Item = String> + '_ {
    let bearer = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok()?.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let cookies = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .filter_map(super::percent_decode);
    bearer.chain(cookies)
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|s| s.contains("text/html")))
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The login form's fields; either may be missing.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LoginForm {
    token: String,
    next: String,
}

async fn form() -> Response {
    page(StatusCode::OK, "/")
}

async fn login(State(state): State<HttpState>, Form(form): Form<LoginForm>) -> Response {
    let next = local_path(&form.next);
    let cookie = match state.token.as_ref() {
        None => None,
        Some(token) if same(&form.token, token.expose()) => Some(cookie(token.expose())),
        Some(_) => {
            debug!("http login refused");
            return page(StatusCode::UNAUTHORIZED, next);
        }
    };
    let mut answer = (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            HeaderValue::from_str(next).unwrap_or(HeaderValue::from_static("/")),
        )],
    )
        .into_response();
    if let Some(value) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        answer.headers_mut().insert(header::SET_COOKIE, value);
    }
    answer
}

/// `next` if it is a path on this server, else `/`: no `//host` or `/\host` (which browsers
/// read as another host), nothing that is not printable ASCII.
pub fn local_path(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.bytes().all(|b| b.is_ascii_graphic());
    if local { next } else { "/" }
}

/// The `Set-Cookie` value for the token: anything but unreserved characters is
/// `%XX`-escaped (a cookie value cannot hold spaces, `;`, `"`, ...), which [`presented`] undoes.
fn cookie(token: &str) -> String {
    format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict", seg(token))
}

/// The login form, returning to `next` (a local path).
fn page(status: StatusCode, next: &str) -> Response {
    let form = format!(
        r#"<form method="post" action="/login" class="login">
<h1>Sign in</h1><p class="muted">The token from jitape's <code>[http] token</code>.</p>
<p><label>Token <input type="password" name="token" autocomplete="current-password" required autofocus></label></p>
<input type="hidden" name="next" value="{}">
<button type="submit">Sign in</button>
</form>"#,
        esc(next)
    );
    let body = html::page("Sign in", Nav::SignIn, &form);
    if status == StatusCode::UNAUTHORIZED {
        (status, [(header::WWW_AUTHENTICATE, "Bearer")], Html(body)).into_response()
    } else {
        (status, Html(body)).into_response()
    }
}

#[cfg(test)]
mod tests;
