//! The recordings pages in a real browser (Debian's headless Chromium over WebDriver) against
//! jitape recording a loopback conference: the token (refused without it, a login form that
//! keeps it in a cookie), the live view updating while the conference runs, the finished
//! recording's timeline in the order the speakers were scripted, the player seeking with
//! range requests; and, over raw TCP (a browser normalises `..` away before sending), that
//! nothing outside the recording directory can be reached, links included.
//!
//! Screenshots of every page go to the test artefacts directory
//! (`target/test-artefacts/pages/`, see `jitape_sim::harness::browser::artefact_dir`).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use jitape::sink::sidecar::{self, Presence, Segment, Sidecar};
use jitape_sim::harness::browser::{Browser, Locator, artefact_dir};
use jitape_sim::harness::{self as support};
use jitape_sim::loopback::{Loopback, MUC_DOMAIN};
use jitape_sim::plan::{ConferencePlan, SpeakerPlan, VoiceSpec, window};
use jitape_sim::voice::default_tone_hz;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "pages-test-token-7f3a9c";

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// What a raw request got back.
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// One request over a fresh connection, exactly as written (no normalisation of the path).
async fn raw(addr: SocketAddr, path: &str, headers: &[&str]) -> Answer {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    let req = format!("GET {path} HTTP/1.1\r\nHost: jitape\r\n{extra}\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(secs(10.0), s.read_to_end(&mut buf))
        .await
        .expect("answer in time")
        .unwrap();
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Answer {
        status,
        head,
        body: buf[split + 4..].to_vec(),
    }
}

fn bearer() -> String {
    format!("Authorization: Bearer {TOKEN}")
}

/// Carol talks 4 s (longer than the live table's 2 s refresh, so a refresh sees her
/// speaking), then Alice, Bob and Alice again.
fn lesson(room: &str) -> ConferencePlan {
    let mut plan = ConferencePlan::empty(room, 16.0);
    let speakers: [(&str, &[(f64, f64)]); 3] = [
        ("Alice", &[(6.5, 8.0), (12.5, 13.5)]),
        ("Bob", &[(9.5, 11.0)]),
        ("Carol", &[(1.5, 5.5)]),
    ];
    plan.speakers = speakers
        .iter()
        .enumerate()
        .map(|(i, (name, talk))| {
            SpeakerPlan::simple(
                &format!("{:08x}", 0xa000_0000u32 + i as u32),
                name,
                VoiceSpec::Tone(default_tone_hz(i)),
                Duration::ZERO,
                None,
                talk.iter().map(|&(a, b)| window(a, b)).collect(),
            )
        })
        .collect();
    plan
}

/// The scripted order of speech and where each starts.
const SPOKEN: [(&str, f64); 4] = [
    ("Carol", 1.5),
    ("Alice", 6.5),
    ("Bob", 9.5),
    ("Alice", 12.5),
];

fn shots() -> PathBuf {
    artefact_dir().join("pages")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recordings_pages_in_a_real_browser() {
    support::logs();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("recordings");
    let mut lb = Loopback::start_with(
        &root,
        48_000,
        &format!("[http]\nbind = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\""),
    )
    .await
    .unwrap();
    let addr = lb.app.as_ref().unwrap().http_addr.expect("http enabled");
    let browser = Browser::start().await.expect("the browser starts");
    let outcome = pages(&browser, &mut lb, addr, &root).await;
    let closed = browser.close().await;
    lb.stop().await;
    outcome.unwrap();
    closed.expect("the browser session ends");
}

type Outcome = Result<(), Box<dyn std::error::Error>>;

async fn pages(b: &Browser, lb: &mut Loopback, addr: SocketAddr, root: &Path) -> Outcome {
    let base = format!("http://{addr}");
    let c = b.client();

    // Without the token: the login form, not the page.
    c.goto(&format!("{base}/live")).await?;
    b.wait_js(
        "document.querySelector('form[action=\"/login\"]')",
        secs(10.0),
    )
    .await?;
    assert_eq!(
        b.eval("!!document.querySelector('table.live')").await?,
        Value::Bool(false)
    );
    b.screenshot(&shots().join("login.png")).await?;
    // Log in: the cookie keeps the token; back on the page asked for.
    c.find(Locator::Css("input[name=\"token\"]"))
        .await?
        .send_keys(TOKEN)
        .await?;
    c.find(Locator::Css("form[action=\"/login\"] button"))
        .await?
        .click()
        .await?;
    b.wait_js(
        "location.pathname === '/live' && document.querySelector('table.live')",
        secs(10.0),
    )
    .await?;
    assert_eq!(
        b.eval("document.cookie").await?,
        Value::String(String::new()),
        "HttpOnly"
    );

    // The live view follows a conference without a reload.
    let room = format!("lesson@{MUC_DOMAIN}");
    let row = format!("#live-rows tr[data-room=\"{room}\"]");
    let watch = async {
        let speaking = b
            .wait_js(
                &format!("Array.from(document.querySelectorAll('{row} .speaking')).map(e => e.textContent).join(',')"),
                secs(20.0),
            )
            .await?;
        b.screenshot(&shots().join("live.png")).await?;
        let present = b
            .eval(&format!("Array.from(document.querySelectorAll('{row} .speaking, {row} .person')).map(e => e.textContent).sort().join(',')"))
            .await?;
        Ok::<_, Box<dyn std::error::Error>>((speaking, present))
    };
    let (played, watched) = tokio::join!(lb.world.run(lesson(&room)), watch);
    played?;
    let (speaking, present) = watched?;
    assert_eq!(
        speaking,
        Value::String("Carol".into()),
        "the first one heard speaking"
    );
    assert_eq!(present, Value::String("Alice,Bob,Carol".into()));
    let files = lb.wait_finalized(&room, secs(20.0)).await?;
    support::flac_test(&files.flac);
    b.wait_js(&format!("!document.querySelector('{row}')"), secs(10.0))
        .await?;

    // The list: the finished recording, complete.
    let big = long_recording(root)?;
    c.goto(&format!("{base}/recordings?room=lesson")).await?;
    let status = b
        .wait_js(
            "document.querySelector('table.recordings tbody tr td:last-child').textContent",
            secs(10.0),
        )
        .await?;
    assert_eq!(status, Value::String("complete".into()));
    assert_eq!(
        b.eval("document.querySelectorAll('table.recordings tbody tr').length")
            .await?,
        1
    );
    b.screenshot(&shots().join("recordings.png")).await?;

    // One recording: the timeline in the scripted order, where it was spoken.
    c.find(Locator::Css("table.recordings tbody a"))
        .await?
        .click()
        .await?;
    b.wait_js("document.querySelector('ol.segments')", secs(10.0))
        .await?;
    let spoken = b
        .eval("Array.from(document.querySelectorAll('ol.segments li')).map(li => [li.dataset.speaker, parseFloat(li.dataset.start)])")
        .await?;
    let spoken: Vec<(String, f64)> = serde_json::from_value(spoken)?;
    let names: Vec<&str> = spoken.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, SPOKEN.map(|(n, _)| n), "{spoken:?}");
    let lanes = b
        .eval("Array.from(document.querySelectorAll('.lane .who')).map(e => e.textContent).sort()")
        .await?;
    assert_eq!(lanes, serde_json::json!(["Alice", "Bob", "Carol"]));
    // The sidecar's times on the recording's clock: 0 is when recording began, not when the
    // script did; the gaps between speakers are what the page must keep.
    let offset = spoken[0].1 - SPOKEN[0].1;
    for ((name, at), (_, scripted)) in spoken.iter().zip(SPOKEN) {
        assert!(
            (at - offset - scripted).abs() < 0.1,
            "{name} at {at} (offset {offset})"
        );
    }
    b.screenshot(&shots().join("recording.png")).await?;
    // The player: the browser plays jitape's FLAC; a click on a segment plays from there.
    b.wait_js(
        "document.getElementById('player').readyState >= 1",
        secs(10.0),
    )
    .await?;
    let duration = b
        .eval("document.getElementById('player').duration")
        .await?
        .as_f64()
        .unwrap_or(0.0);
    let sc = sidecar::read(&files.sidecar)?;
    assert!(
        (duration - sc.duration().as_secs_f64()).abs() < 0.05,
        "player {duration} s"
    );
    c.find(Locator::Css("ol.segments li:nth-child(3) button"))
        .await?
        .click()
        .await?;
    b.wait_js(
        &format!("(p => !p.paused && p.currentTime >= {} && p.currentTime < {})(document.getElementById('player'))", spoken[2].1, spoken[2].1 + 1.0),
        secs(10.0),
    )
    .await?;
    // On a phone.
    b.set_viewport(390, 844).await?;
    b.screenshot(&shots().join("recording-phone.png")).await?;
    b.set_viewport(1280, 900).await?;

    // Seeking a long recording fetches the part it needs: a range request past the start.
    let metrics = lb.app.as_ref().unwrap().metrics();
    c.goto(&format!("{base}{}", big.page)).await?;
    b.wait_js(
        "document.getElementById('player').readyState >= 1",
        secs(15.0),
    )
    .await?;
    let ranges = metrics.http_file_ranges.get();
    assert!(ranges >= 1, "the player asks with a range from the start");
    c.find(Locator::Css("ol.segments li button"))
        .await?
        .click()
        .await?;
    b.wait_js(
        &format!("(p => p.currentTime >= {0} && p.currentTime < {0} + 2 && p.readyState >= 2)(document.getElementById('player'))", big.seek),
        secs(20.0),
    )
    .await?;
    assert!(
        metrics.http_file_ranges.get() > ranges,
        "the seek was a new range request"
    );

    refused_outside_the_directory(addr, root, &files.flac).await?;
    Ok(())
}

/// A finished recording too long to be fetched at once (4 minutes of noise, ~20 MB), with one
/// speaking segment near its end.
struct Long {
    page: String,
    seek: f64,
}

fn long_recording(root: &Path) -> Result<Long, Box<dyn std::error::Error>> {
    const RATE: u32 = 48_000;
    const SECONDS: u64 = 240;
    let start = Utc.with_ymd_and_hms(2026, 1, 2, 9, 0, 0).unwrap();
    let paths = jitape::sink::recording_paths(root, &format!("long@{MUC_DOMAIN}"), start);
    paths.create_dir()?;
    // Noise does not compress: the file is as large as its duration.
    let mut pcm = Vec::with_capacity((SECONDS * u64::from(RATE) * 2) as usize);
    let mut x: u32 = 0x1234_5678;
    for _ in 0..SECONDS * u64::from(RATE) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        pcm.extend_from_slice(&((x >> 16) as i16 / 4).to_le_bytes());
    }
    // jitape's own files have no seek table; neither has this one.
    let mut flac = Command::new("flac")
        .args([
            "--silent",
            "--force",
            "-0",
            "--no-seektable",
            "--no-padding",
            "--force-raw-format",
            "--endian=little",
            "--sign=signed",
            "--channels=1",
            "--bps=16",
            "--sample-rate=48000",
            "-o",
        ])
        .arg(&paths.flac)
        .arg("-")
        .stdin(Stdio::piped())
        .spawn()?;
    flac.stdin.take().unwrap().write_all(&pcm)?;
    assert!(flac.wait()?.success(), "flac encodes the fixture");
    let mut sc = Sidecar::new(
        &format!("long@{MUC_DOMAIN}"),
        &paths.room_dir,
        "x.flac",
        RATE,
        start,
    );
    let seek = 200.0;
    let at = |s: f64| sc.at_sample((s * f64::from(RATE)) as u64);
    let (join, a, b) = (at(0.0), at(seek), at(seek + 5.0));
    let p = sc.participant_mut("dave");
    p.display_name = Some("Dave".into());
    p.presence = vec![Presence { join, leave: None }];
    p.speaking = vec![Segment { start: a, end: b }];
    sc.finish(SECONDS * u64::from(RATE), "room destroyed");
    sidecar::write_final(&paths.sidecar, &sc)?;
    Ok(Long {
        page: format!(
            "/recordings/{}/{}",
            paths.room_dir.replace('@', "%40"),
            paths.name
        ),
        seek,
    })
}

/// Only jitape's own files under the recording directory are served: not with `..`, not
/// with encoded slashes, not through links someone placed in the directory.
async fn refused_outside_the_directory(addr: SocketAddr, root: &Path, flac: &Path) -> Outcome {
    let room_dir = flac
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let name = flac.file_stem().unwrap().to_str().unwrap().to_string();
    let auth = bearer();
    let cookie = format!("Cookie: jitape_token={TOKEN}");
    let base = format!("/recordings/{}/{name}", room_dir.replace('@', "%40"));

    // The real ones, with the token in either place; a range is answered as one.
    assert_eq!(
        raw(addr, &format!("{base}/audio.flac"), &[&auth])
            .await
            .status,
        200
    );
    let part = raw(
        addr,
        &format!("{base}/audio.flac"),
        &[&cookie, "Range: bytes=100-199"],
    )
    .await;
    assert_eq!(part.status, 206, "{}", part.head);
    assert_eq!(part.body.len(), 100);
    assert!(
        part.head
            .to_lowercase()
            .contains("content-range: bytes 100-199/"),
        "{}",
        part.head
    );
    assert_eq!(
        raw(
            addr,
            &format!("{base}/audio.flac"),
            &[&auth, "Range: bytes=999999999-"]
        )
        .await
        .status,
        416
    );
    for path in [
        "/live",
        "/recordings",
        base.as_str(),
        &format!("{base}/sidecar.json"),
    ] {
        assert_eq!(
            raw(addr, path, &[]).await.status,
            401,
            "{path} without the token"
        );
        assert_eq!(
            raw(addr, path, &["Cookie: jitape_token=wrong"])
                .await
                .status,
            401,
            "{path}"
        );
        assert_eq!(raw(addr, path, &[&cookie]).await.status, 200, "{path}");
    }

    // Something outside the directory, and links to it placed inside.
    let outside = root.parent().unwrap().join("outside");
    std::fs::create_dir_all(&outside)?;
    std::fs::write(outside.join("secret.txt"), "SECRET-CONTENT")?;
    let secret_rec =
        jitape::sink::recording_paths(&outside, &format!("secret@{MUC_DOMAIN}"), Utc::now());
    secret_rec.create_dir()?;
    std::fs::copy(flac, &secret_rec.flac)?;
    std::fs::write(&secret_rec.sidecar, "SECRET-CONTENT")?;
    std::os::unix::fs::symlink(&secret_rec.dir, root.join(&secret_rec.room_dir))?;
    std::os::unix::fs::symlink(outside.join("secret.txt"), flac.with_extension("json.bak"))?;
    let linked_name = "20260101T000000Z";
    std::os::unix::fs::symlink(
        &secret_rec.flac,
        flac.parent().unwrap().join(format!("{linked_name}.flac")),
    )?;
    std::os::unix::fs::symlink(
        &secret_rec.sidecar,
        flac.parent().unwrap().join(format!("{linked_name}.json")),
    )?;
    let secret_base = format!(
        "/recordings/{}/{}",
        secret_rec.room_dir.replace('@', "%40"),
        secret_rec.name
    );
    let linked_base = format!("/recordings/{}/{linked_name}", room_dir.replace('@', "%40"));

    for path in [
        "/recordings/..%2f..%2foutside/secret.txt".to_string(),
        "/recordings/%2e%2e/%2e%2e/audio.flac".to_string(),
        format!("{base}/../../../outside/secret.txt"),
        format!("{base}/stems/..%2f..%2f..%2foutside%2fsecret.txt"),
        format!("{base}/stems/%2e%2e%2f{name}.json.bak"),
        format!("/recordings/{room_dir}/..%2f{name}/audio.flac"),
        format!("/recordings/{room_dir}/{name}%2f..%2f..%2f..%2foutside%2fsecret.txt/audio.flac"),
        format!("/recordings//{name}/audio.flac"),
        "//outside/secret.txt".to_string(),
        format!("/recordings/{room_dir}/{name}.json.bak"),
        secret_base.clone(),
        format!("{secret_base}/audio.flac"),
        format!("{secret_base}/sidecar.json"),
        linked_base.clone(),
        format!("{linked_base}/audio.flac"),
        format!("{linked_base}/sidecar.json"),
    ] {
        let got = raw(addr, &path, &[&auth]).await;
        assert!(matches!(got.status, 400 | 404), "{path}: {}", got.head);
        assert!(
            !String::from_utf8_lossy(&got.body).contains("SECRET"),
            "{path}"
        );
    }
    // And the list does not show the linked room.
    let list = raw(addr, "/recordings", &[&auth]).await;
    assert!(
        !String::from_utf8_lossy(&list.body).contains("secret@"),
        "listed through a link"
    );
    Ok(())
}
