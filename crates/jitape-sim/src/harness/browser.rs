//! A real browser for the tests of jitape's web pages: Debian's headless Chromium driven over
//! WebDriver (`chromedriver`, package `chromium-driver`; `scripts/test` installs both).
//!
//! [`Browser::start`] runs `chromedriver` on a free 127.0.0.1 port (it accepts local
//! connections only), waits until it reports ready, and opens one WebDriver session whose
//! Chromium runs headless, as root in a container, with a private profile and temp directory
//! and without background network traffic. [`Browser::client`] is the `fantoccini` client for
//! everything else (`goto`, `find`, `click`, `execute`, ...).
//!
//! Stopping: [`Browser::close`] ends the session (Chromium quits) and stops chromedriver. If
//! a test panics first, `Drop` does the same synchronously: it ends the session with a plain
//! `DELETE /session/<id>`, stops chromedriver and kills whatever it had started and left
//! behind. chromedriver and Chromium stay in the test's process group, so a test runner that
//! kills a hung test's group kills them too.
//!
//! Screenshots and other files worth keeping after a run go under [`artefact_dir`].

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use rustix::process::{Pid, Signal, kill_process};
use serde_json::{Value, json};

/// The WebDriver client crate, for the tests (`Locator`, `elements`, `error`, ...).
pub use fantoccini::{self, Locator};

/// How long chromedriver may take to report ready.
const DRIVER_READY: Duration = Duration::from_secs(20);
/// How long opening the session (starting Chromium) may take.
const SESSION_START: Duration = Duration::from_secs(30);
/// How long chromedriver may take to exit after SIGTERM before it is killed.
const DRIVER_STOP: Duration = Duration::from_secs(5);
/// The page's viewport (and so a screenshot's size) at the start: a laptop screen.
pub const WINDOW: (u32, u32) = (1280, 900);

/// Where the tests leave files worth looking at after a run (screenshots): the directory in
/// `$JITAPE_TEST_ARTEFACTS` if set, else `target/test-artefacts/` under the workspace root
/// (the checkout's own `target/`, also when `CARGO_TARGET_DIR` points elsewhere). Not
/// created here; [`Browser::screenshot`] creates what it needs.
pub fn artefact_dir() -> PathBuf {
    match std::env::var_os("JITAPE_TEST_ARTEFACTS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("target").join("test-artefacts"),
    }
}

fn workspace_root() -> PathBuf {
    // This crate is `crates/jitape-sim` of the workspace.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .unwrap_or(manifest)
        .to_path_buf()
}

/// What went wrong with the browser.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    /// chromedriver did not start, did not become ready, or the session could not be opened;
    /// the message includes the end of chromedriver's output.
    #[error("{0}")]
    Start(String),
    /// A WebDriver command failed.
    #[error("webdriver: {0}")]
    Command(#[from] CmdError),
    /// A JavaScript condition did not become true in time.
    #[error(
        "browser: `{expr}` was not true within {timeout:?}; last value {last}{}",
        last_error.as_ref().map(|e| format!(", last error: {e}")).unwrap_or_default()
    )]
    Timeout {
        expr: String,
        timeout: Duration,
        last: Value,
        last_error: Option<String>,
    },
    /// The browser did something else than asked.
    #[error("browser: {0}")]
    Unexpected(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

pub type Result<T, E = BrowserError> = std::result::Result<T, E>;

/// A headless Chromium with one open WebDriver session. See the module doc.
pub struct Browser {
    client: Option<Client>,
    /// The session's id while it is open (for ending it from `Drop`).
    session: Option<String>,
    driver: Option<Child>,
    port: u16,
    /// Chromium's profile, the temp directory of chromedriver and Chromium, and
    /// chromedriver's output (`chromedriver.log`).
    dir: tempfile::TempDir,
}

impl Browser {
    /// Start chromedriver and open a session (a headless Chromium with a 1280×900 viewport,
    /// autoplay allowed, audio muted).
    pub async fn start() -> Result<Browser> {
        let dir = tempfile::Builder::new()
            .prefix("jitape-browser-")
            .tempdir()
            .map_err(|source| BrowserError::Io {
                what: "browser temp dir".into(),
                source,
            })?;
        let (profile, tmp) = (dir.path().join("profile"), dir.path().join("tmp"));
        for d in [&profile, &tmp] {
            fs::create_dir_all(d).map_err(|source| BrowserError::Io {
                what: format!("create {}", d.display()),
                source,
            })?;
        }
        let log = dir.path().join("chromedriver.log");
        let out = fs::File::create(&log).map_err(|source| BrowserError::Io {
            what: format!("create {}", log.display()),
            source,
        })?;
        let err = out.try_clone().map_err(|source| BrowserError::Io {
            what: format!("dup {}", log.display()),
            source,
        })?;
        let port = free_port().map_err(|source| BrowserError::Io {
            what: "a free port on 127.0.0.1".into(),
            source,
        })?;
        // No `--allowed-ips`: without it chromedriver listens on loopback only.
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            // Chromium's scoped temp dirs and its crash database (`chromium/Crash Reports`)
            // land here and go with `dir`.
            .env("TMPDIR", &tmp)
            .env("XDG_CONFIG_HOME", &tmp)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| {
                BrowserError::Start(format!(
                    "chromedriver could not be started ({e}); it is Debian's package \
                     chromium-driver (scripts/test installs it: \
                     apt-get install chromium chromium-driver)"
                ))
            })?;
        let mut browser = Browser {
            client: None,
            session: None,
            driver: Some(driver),
            port,
            dir,
        };
        browser.wait_ready().await?;

        let mut args = vec![
            "--headless=new".to_string(),
            // Chromium refuses to run as root with its sandbox.
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            format!("--window-size={},{}", WINDOW.0, WINDOW.1),
            "--autoplay-policy=no-user-gesture-required".into(),
            "--mute-audio".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        // No background connections (the test machines have no network to offer them).
        args.extend(
            [
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ]
            .map(String::from),
        );
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "args": args },
        });
        let Value::Object(caps) = caps else {
            unreachable!("a JSON object")
        };
        let url = format!("http://127.0.0.1:{port}");
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(caps);
        let client = match tokio::time::timeout(SESSION_START, builder.connect(&url)).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => {
                return Err(BrowserError::Start(format!(
                    "chromedriver on {url} could not open a Chromium session: {e}\n{}",
                    browser.driver_log_tail()
                )));
            }
            Err(_) => {
                return Err(BrowserError::Start(format!(
                    "chromedriver on {url} did not open a Chromium session within \
                     {SESSION_START:?}\n{}",
                    browser.driver_log_tail()
                )));
            }
        };
        browser.session = client.session_id().await?;
        browser.client = Some(client);
        // `--window-size` is the outer window; the page gets less.
        browser.set_viewport(WINDOW.0, WINDOW.1).await?;
        Ok(browser)
    }

    /// Resize the window so that the page's viewport (and a screenshot) is `width`×`height`
    /// CSS pixels, e.g. 390×844 for a phone.
    pub async fn set_viewport(&self, width: u32, height: u32) -> Result<()> {
        // The window's frame, from the window's size as WebDriver set it (`outerWidth` is
        // not reliable once the window is narrower than headless Chromium's minimum).
        let (outer_w, outer_h) = self.client().get_window_size().await?;
        let inner = self.eval("[window.innerWidth, window.innerHeight]").await?;
        let frame =
            |i: usize, outer: u64| outer.saturating_sub(inner[i].as_u64().unwrap_or(0)) as u32;
        let (fw, fh) = (frame(0, outer_w), frame(1, outer_h));
        self.client()
            .set_window_size(width + fw, height + fh)
            .await?;
        let inner = self.eval("[window.innerWidth, window.innerHeight]").await?;
        if inner != json!([width, height]) {
            return Err(BrowserError::Unexpected(format!(
                "the viewport is {inner}, not [{width}, {height}] (window frame [{fw}, {fh}])"
            )));
        }
        Ok(())
    }

    /// Poll chromedriver's `GET /status` until it says `ready`.
    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + DRIVER_READY;
        loop {
            if let Some(status) = self
                .driver
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(BrowserError::Start(format!(
                    "chromedriver exited ({status}) before it was ready on 127.0.0.1:{}\n{}",
                    self.port,
                    self.driver_log_tail()
                )));
            }
            let port = self.port;
            let ready = tokio::task::spawn_blocking(move || driver_ready(port))
                .await
                .unwrap_or(false);
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(BrowserError::Start(format!(
                    "chromedriver did not report ready on 127.0.0.1:{} within {DRIVER_READY:?}\n{}",
                    self.port,
                    self.driver_log_tail()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The WebDriver client of the open session.
    pub fn client(&self) -> &Client {
        self.client
            .as_ref()
            .expect("the session is open until close()")
    }

    /// The value of a JavaScript expression in the current page.
    pub async fn eval(&self, expr: &str) -> Result<Value> {
        Ok(self
            .client()
            .execute(&format!("return ({expr});"), Vec::new())
            .await?)
    }

    /// Evaluate the JavaScript expression `expr` in the current page every 50 ms until it is
    /// truthy, and return that value. A JavaScript error (say, an element not there yet)
    /// counts as not true yet; after `timeout` the error names the expression, its last value
    /// and the last JavaScript error.
    pub async fn wait_js(&self, expr: &str, timeout: Duration) -> Result<Value> {
        let script = format!("const v = ({expr}); return [!!v, v === undefined ? null : v];");
        let deadline = Instant::now() + timeout;
        let (mut last, mut last_error) = (Value::Null, None);
        loop {
            match self.client().execute(&script, Vec::new()).await {
                Ok(Value::Array(pair)) if pair.len() == 2 => {
                    if pair[0] == Value::Bool(true) {
                        return Ok(pair[1].clone());
                    }
                    last = pair[1].clone();
                }
                Ok(other) => last = other,
                Err(e) if e.is_javascript_error() => last_error = Some(e.to_string()),
                Err(e) => return Err(e.into()),
            }
            if Instant::now() > deadline {
                return Err(BrowserError::Timeout {
                    expr: expr.to_string(),
                    timeout,
                    last,
                    last_error,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Save a PNG of the window's current contents at `path` (parent directories are
    /// created); returns its size in bytes.
    pub async fn screenshot(&self, path: &Path) -> Result<usize> {
        let png = self.client().screenshot().await?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|source| BrowserError::Io {
                what: format!("create {}", parent.display()),
                source,
            })?;
        }
        fs::write(path, &png).map_err(|source| BrowserError::Io {
            what: format!("write {}", path.display()),
            source,
        })?;
        Ok(png.len())
    }

    /// chromedriver and every process below it (Chromium's), as pids: to check that they are
    /// gone after `close` or a drop. Not included: Chromium's two crash handlers
    /// (`chrome_crashpad_handler`), which detach themselves and exit with the browser.
    pub fn processes(&self) -> Vec<u32> {
        let Some(driver) = &self.driver else {
            return Vec::new();
        };
        let mut pids = vec![driver.id()];
        pids.extend(descendants(driver.id()).into_iter().map(|(p, _)| p as u32));
        pids
    }

    /// chromedriver's output so far (it includes Chromium's own stderr).
    pub fn driver_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default()
    }

    fn driver_log_tail(&self) -> String {
        let log = self.driver_log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        if tail.is_empty() {
            "(chromedriver printed nothing)".into()
        } else {
            format!("chromedriver's output (last 30 lines):\n{tail}")
        }
    }

    /// End the session (Chromium quits) and stop chromedriver. Dropping a `Browser` does the
    /// same; `close` waits for the session's end properly and reports a failure.
    pub async fn close(mut self) -> Result<()> {
        let result = match self.client.take() {
            Some(client) => client.close().await,
            None => Ok(()),
        };
        if result.is_ok() {
            self.session = None;
        }
        // On failure, `Drop` tries to end the session once more before it stops chromedriver.
        result.map_err(BrowserError::from)
    }

    /// The synchronous end: end the session if it is still open, stop chromedriver (SIGTERM,
    /// then SIGKILL) and kill every process it started that is still alive.
    fn shutdown(&mut self) {
        drop(self.client.take());
        if let Some(session) = self.session.take() {
            delete_session(self.port, &session);
        }
        let Some(mut driver) = self.driver.take() else {
            return;
        };
        let started = descendants(driver.id());
        let _ = kill_process(Pid::from_child(&driver), Signal::TERM);
        let deadline = Instant::now() + DRIVER_STOP;
        while driver.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = driver.kill();
        let _ = driver.wait();
        // What chromedriver left behind, unless the pid now belongs to another process.
        for (pid, start) in started {
            let same = parent_and_start(pid).is_some_and(|(_, s)| s == start);
            if let (true, Some(pid)) = (same, Pid::from_raw(pid)) {
                let _ = kill_process(pid, Signal::KILL);
            }
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// A blocking HTTP/1.1 request to chromedriver; the response's body. chromedriver keeps the
/// connection open whatever the request says, so the body is read by its Content-Length.
fn driver_request(port: u16, method: &str, path: &str) -> Option<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n"
    )
    .ok()?;
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))?
                .trim()
                .parse()
                .ok()?;
            let body_start = end + 4;
            if data.len() >= body_start + length {
                let body = &data[body_start..body_start + length];
                return Some(String::from_utf8_lossy(body).into_owned());
            }
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
}

/// chromedriver answers `GET /status` with `{"value": {"ready": true, ...}}`.
fn driver_ready(port: u16) -> bool {
    driver_request(port, "GET", "/status")
        .and_then(|body| serde_json::from_str::<Value>(&body).ok())
        .is_some_and(|v| v["value"]["ready"] == Value::Bool(true))
}

/// End a session without the async client (from `Drop`, maybe while a panic unwinds).
fn delete_session(port: u16, session: &str) {
    let _ = driver_request(port, "DELETE", &format!("/session/{session}"));
}

/// A process's parent and start time (in clock ticks since boot), from `/proc/<pid>/stat`.
fn parent_and_start(pid: i32) -> Option<(i32, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`; comm may contain spaces and parentheses. After comm,
    // field 2 is the parent and field 20 the start time.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some((fields.get(1)?.parse().ok()?, fields.get(19)?.parse().ok()?))
}

/// Every process below `root` (pid and start time), from /proc.
fn descendants(root: u32) -> Vec<(i32, u64)> {
    let mut children: HashMap<i32, Vec<(i32, u64)>> = HashMap::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some((ppid, start)) = parent_and_start(pid) {
            children.entry(ppid).or_default().push((pid, start));
        }
    }
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    let mut todo = vec![root as i32];
    while let Some(p) = todo.pop() {
        for &(c, start) in children.get(&p).into_iter().flatten() {
            if seen.insert(c) {
                found.push((c, start));
                todo.push(c);
            }
        }
    }
    found
}
