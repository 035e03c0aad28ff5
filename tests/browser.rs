//! The browser harness itself (`jitape_sim::harness::browser`): Debian's headless Chromium,
//! driven over chromedriver, loads a page from a local server, clicks, runs JavaScript, loads
//! a FLAC written by jitape's own writer into an `<audio>` element, and takes a screenshot;
//! and chromedriver and Chromium are gone afterwards, also when a test panics.
//!
//! Needs `chromium` and `chromium-driver` (scripts/test installs them); without them these
//! tests fail, they do not skip.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jitape_sim::harness::browser::{Browser, Locator, WINDOW, artefact_dir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>jitape browser harness</title>
<style>body { font: 18px sans-serif; margin: 2em } button { font-size: 20px; padding: .4em 1em }</style>
</head><body>
<h1>Browser harness</h1>
<p><button id="b" onclick="this.textContent = 'clicked'">click me</button></p>
<p><audio id="player" controls preload="metadata" src="/tone.flac"></audio></p>
</body></html>
"#;

const SAMPLE_RATE: u32 = 48_000;
const TONE_SECONDS: f64 = 2.5;

/// A mono 440 Hz tone written by jitape's own FLAC writer (no SEEKTABLE, like a recording).
fn tone_flac(dir: &Path) -> Vec<u8> {
    let path = dir.join("tone.flac");
    let mut w = jitape::sink::FlacWriter::create(&path, SAMPLE_RATE).unwrap();
    let n = (TONE_SECONDS * SAMPLE_RATE as f64) as usize;
    let samples: Vec<i16> = (0..n)
        .map(|i| {
            let t = i as f64 / SAMPLE_RATE as f64;
            (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
        })
        .collect();
    w.write(&samples).unwrap();
    let done = w.finalize().unwrap();
    assert_eq!(done.duration(), Duration::from_secs_f64(TONE_SECONDS));
    std::fs::read(&path).unwrap()
}

/// A tiny HTTP server on 127.0.0.1: `/` is `PAGE`, `/tone.flac` the FLAC, anything else 404;
/// one request per connection. Returns its address and the request lines it has seen.
async fn serve(flac: Vec<u8>) -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (flac, log) = (Arc::new(flac), seen.clone());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let (flac, log) = (flac.clone(), log.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 2048];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 << 10 {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let line = head.lines().next().unwrap_or_default().to_string();
                let path = line.split(' ').nth(1).unwrap_or_default();
                let (status, kind, body): (&str, &str, &[u8]) = match path {
                    "/" => ("200 OK", "text/html; charset=utf-8", PAGE.as_bytes()),
                    "/tone.flac" => ("200 OK", "audio/flac", &flac[..]),
                    _ => ("404 Not Found", "text/plain", b"not found\n"),
                };
                log.lock().unwrap().push(line.clone());
                let answer = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
                     Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
                let _ = s.write_all(body).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (addr, seen)
}

/// The process is running (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(str::to_string))
        })
        .is_some_and(|state| state != "Z" && state != "X")
}

/// Wait (bounded) until none of `pids` runs; the ones still running after `limit`.
async fn still_running(pids: &[u32], limit: Duration) -> Vec<u32> {
    let deadline = Instant::now() + limit;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_clicks_plays_jitapes_flac_and_takes_a_screenshot() {
    let tmp = tempfile::tempdir().unwrap();
    let (addr, seen) = serve(tone_flac(tmp.path())).await;

    let t = Instant::now();
    let browser = Browser::start().await.unwrap_or_else(|e| panic!("{e}"));
    eprintln!("browser session in {:?}", t.elapsed());
    let processes = browser.processes();
    assert!(
        processes.len() > 1,
        "chromedriver and Chromium run: {processes:?}"
    );

    let c = browser.client();
    c.goto(&format!("http://{addr}/")).await.unwrap();
    assert_eq!(c.title().await.unwrap(), "jitape browser harness");

    // A click, and JavaScript seeing its effect.
    let button = c.find(Locator::Id("b")).await.unwrap();
    assert_eq!(button.text().await.unwrap(), "click me");
    button.click().await.unwrap();
    browser
        .wait_js(
            "document.getElementById('b').textContent === 'clicked'",
            Duration::from_secs(5),
        )
        .await
        .unwrap();

    // The FLAC: Chromium decodes it and knows its length.
    let can = browser
        .eval("document.querySelector('audio').canPlayType('audio/flac')")
        .await
        .unwrap();
    assert!(
        can.as_str().is_some_and(|s| !s.is_empty()),
        "canPlayType('audio/flac') = {can}"
    );
    let duration = browser
        .wait_js(
            "(a => a.error ? 'media error ' + a.error.code : a.readyState >= 1 && a.duration)\
             (document.querySelector('audio'))",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let duration = duration
        .as_f64()
        .unwrap_or_else(|| panic!("audio element: {duration}"));
    assert!(
        (duration - TONE_SECONDS).abs() < 0.001,
        "duration {duration}, expected {TONE_SECONDS}"
    );
    let requests = seen.lock().unwrap().clone();
    assert!(
        requests.iter().any(|r| r.starts_with("GET /tone.flac ")),
        "the browser fetched the FLAC: {requests:?}"
    );

    // A screenshot: a real PNG of the window.
    let shot = artefact_dir().join("browser/harness-page.png");
    let _ = std::fs::remove_file(&shot);
    browser.screenshot(&shot).await.unwrap();
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is no PNG",
        shot.display()
    );
    assert!(
        png.len() > 1024,
        "{} has {} bytes",
        shot.display(),
        png.len()
    );
    let size = (
        u32::from_be_bytes(png[16..20].try_into().unwrap()),
        u32::from_be_bytes(png[20..24].try_into().unwrap()),
    );
    assert_eq!(size, WINDOW, "screenshot size (IHDR)");
    eprintln!("screenshot: {} ({} bytes)", shot.display(), png.len());

    let t = Instant::now();
    browser.close().await.unwrap();
    let left = still_running(&processes, Duration::from_secs(10)).await;
    eprintln!("closed in {:?}", t.elapsed());
    assert!(
        left.is_empty(),
        "still running after close: {left:?} of {processes:?}"
    );
}

/// A test that panics with the browser open: unwinding drops it, which ends the session and
/// stops chromedriver, and no Chromium process stays behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_test_leaves_no_browser_behind() {
    let (addr, _) = serve(Vec::new()).await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let browser = Browser::start().await.unwrap_or_else(|e| panic!("{e}"));
        browser
            .client()
            .goto(&format!("http://{addr}/"))
            .await
            .unwrap();
        tx.send(browser.processes()).unwrap();
        panic!("a deliberate panic with the browser open (expected in this test's output)");
    });
    let panicked = task.await.expect_err("the task panics");
    let processes = match rx.await {
        Ok(processes) => processes,
        // It panicked before the deliberate panic: that is the failure to report.
        Err(_) => std::panic::resume_unwind(panicked.into_panic()),
    };
    assert!(
        processes.len() > 1,
        "chromedriver and Chromium ran: {processes:?}"
    );
    let left = still_running(&processes, Duration::from_secs(10)).await;
    assert!(
        left.is_empty(),
        "still running after the panic: {left:?} of {processes:?}"
    );
}
