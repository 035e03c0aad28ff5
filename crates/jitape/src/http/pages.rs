//! The operator's pages: what is being recorded now, the finished recordings, and one
//! recording with its speaker timeline and a player. Server-rendered HTML with a little
//! inline script, no build step and nothing fetched from elsewhere.
//!
//! ```text
//! GET /                                            → /live
//! GET /live                                        conferences being recorded now
//! GET /live/rows                                   the live table's rows (the page polls them)
//! GET /recordings?room=&date=YYYY-MM-DD            finished recordings, newest first
//! GET /recordings/{room_dir}/{name}                one recording
//! GET /recordings/{room_dir}/{name}/audio.flac     the mix (range requests: seeking works)
//! GET /recordings/{room_dir}/{name}/sidecar.json   its sidecar
//! GET /recordings/{room_dir}/{name}/stems/{file}   a participant's stem
//! ```
//!
//! Behind the same token as the API (a browser logs in once, the token is kept in a cookie).
//! Names in URLs are the ones on disk; [`crate::sink::catalog`] resolves them and never
//! reaches outside the recording directory.

pub(super) mod html;
mod list;
mod live;
mod recording;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::NaiveDate;
use serde::Deserialize;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use super::HttpState;
use super::api::conferences;
use crate::sink::catalog::{self, FileKind, Filter};

/// Recordings listed at most on one page.
const LIST_LIMIT: usize = 200;

/// The pages' routes (merged behind the token check by [`super::app`]).
pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/live") }))
        .route("/live", get(live_page))
        .route("/live/rows", get(live_rows))
        .route("/recordings", get(list_page))
        .route("/recordings/{room}/{name}", get(recording_page))
        .route("/recordings/{room}/{name}/audio.flac", get(mix))
        .route("/recordings/{room}/{name}/sidecar.json", get(sidecar))
        .route("/recordings/{room}/{name}/stems/{file}", get(stem))
}

async fn live_page(State(state): State<HttpState>) -> Response {
    match conferences(&state).await {
        Ok(list) => Html(live::render(&list)).into_response(),
        Err(answer) => answer,
    }
}

async fn live_rows(State(state): State<HttpState>) -> Response {
    match conferences(&state).await {
        Ok(list) => Html(live::rows(&list)).into_response(),
        Err(answer) => answer,
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    room: Option<String>,
    date: Option<String>,
}

async fn list_page(State(state): State<HttpState>, Query(q): Query<ListQuery>) -> Response {
    let date = match q.date.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(d) => match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                return (StatusCode::BAD_REQUEST, "date must be YYYY-MM-DD\n").into_response();
            }
        },
    };
    let filter = Filter {
        room: q
            .room
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty()),
        date,
        limit: LIST_LIMIT,
    };
    let root = state.recordings.clone();
    let f = filter.clone();
    match tokio::task::spawn_blocking(move || catalog::list(&root, &f)).await {
        Ok(Ok(listings)) => Html(list::render(&listings, &filter)).into_response(),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the recording directory cannot be read: {e}\n"),
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn recording_page(
    State(state): State<HttpState>,
    Path((room, name)): Path<(String, String)>,
) -> Response {
    let root = state.recordings.clone();
    match tokio::task::spawn_blocking(move || catalog::open(&root, &room, &name)).await {
        Ok(Ok(listing)) => Html(match &listing.sidecar {
            Ok(sc) => recording::render(&listing, sc),
            Err(why) => recording::render_without_sidecar(&listing, why),
        })
        .into_response(),
        _ => super::not_found().await,
    }
}

async fn mix(
    State(state): State<HttpState>,
    Path((room, name)): Path<(String, String)>,
    req: Request,
) -> Response {
    file(&state, room, name, FileKind::Mix, req).await
}

async fn sidecar(
    State(state): State<HttpState>,
    Path((room, name)): Path<(String, String)>,
    req: Request,
) -> Response {
    file(&state, room, name, FileKind::Sidecar, req).await
}

async fn stem(
    State(state): State<HttpState>,
    Path((room, name, file_name)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    file(&state, room, name, FileKind::Stem(file_name), req).await
}

/// One of a recording's files, with range requests, or 404 for anything else.
async fn file(
    state: &HttpState,
    room: String,
    name: String,
    kind: FileKind,
    req: Request,
) -> Response {
    let root = state.recordings.clone();
    let path =
        tokio::task::spawn_blocking(move || catalog::resolve(&root, &room, &name, &kind)).await;
    // Names jitape does not write and files that are not there (or are links) alike.
    let Ok(Ok(path)) = path else {
        return super::not_found().await;
    };
    match ServeFile::new(path).oneshot(req).await {
        Ok(mut answer) => {
            match answer.status() {
                StatusCode::OK => state.metrics.http_file_whole.inc(),
                StatusCode::PARTIAL_CONTENT => state.metrics.http_file_ranges.inc(),
                _ => {}
            }
            // Finished files do not change: the browser may keep them, but only for this user.
            answer.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-cache"),
            );
            answer.into_response()
        }
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests;
