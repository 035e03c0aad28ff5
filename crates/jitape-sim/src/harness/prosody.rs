//! A real Prosody (Debian's package) for the tests: its own config, ports, data and log in a
//! temp directory, listening on 127.0.0.1 only, stopped when dropped.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

/// The domains of the scenario tests that run jitape and the simulated Jitsi side against
/// this Prosody.
pub const MUC: &str = "conference.localhost";
pub const RECORDER: &str = "recorder.localhost";
pub const SIM: &str = "sim.localhost";

/// The simulated Jitsi side (focus, bridge, people), connected to the Prosody whose
/// component port is `port` as the `SIM` component (secret "sim-secret").
pub async fn sim_world(port: u16) -> crate::world::World {
    crate::world::World::connect(crate::world::WorldSettings {
        host: "127.0.0.1".into(),
        port,
        domain: SIM.into(),
        secret: "sim-secret".into(),
        muc_domain: MUC.into(),
        recorder_domain: RECORDER.into(),
    })
    .await
    .expect("simulation connects to prosody")
}

/// One external component Prosody should accept.
pub struct ComponentDecl {
    pub domain: String,
    pub secret: String,
}

/// What to run.
pub struct ProsodySpec {
    pub components: Vec<ComponentDecl>,
    pub muc_domains: Vec<String>,
    /// Extra lines for each MUC component section (e.g. `modules_enabled = { ... }`).
    pub muc_extra: String,
    /// Extra global lines (e.g. `plugin_paths = { ... }`).
    pub global_extra: String,
}

pub struct Prosody {
    child: Option<Child>,
    pub dir: PathBuf,
    pub component_port: u16,
    pub c2s_port: u16,
    config: PathBuf,
    _tmp: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn render(spec: &ProsodySpec, dir: &Path, component_port: u16, c2s_port: u16) -> String {
    let d = dir.display();
    let mut cfg = format!(
        r#"-- written by jitape's test harness
daemonize = false
run_as_root = true
pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
certificates = "{d}/certs"
log = {{ {{ levels = {{ min = "debug" }}, to = "file", filename = "{d}/prosody.log" }} }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {c2s_port} }}
s2s_ports = {{ }}
component_ports = {{ {component_port} }}
component_interfaces = {{ "127.0.0.1" }}
http_ports = {{ }}
https_ports = {{ }}
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
modules_enabled = {{ "disco", "ping" }}
modules_disabled = {{ "s2s", "tls" }}
{global}
VirtualHost "localhost"
  authentication = "anonymous"
"#,
        global = spec.global_extra
    );
    for muc in &spec.muc_domains {
        cfg.push_str(&format!(
            r#"
Component "{muc}" "muc"
  muc_room_locking = false
  muc_room_default_public_jids = true
  muc_room_default_history_length = 0
  muc_tombstones = false
{}
"#,
            spec.muc_extra
        ));
    }
    for c in &spec.components {
        cfg.push_str(&format!(
            "\nComponent \"{}\"\n  component_secret = \"{}\"\n",
            c.domain, c.secret
        ));
    }
    cfg
}

impl Prosody {
    pub fn start(spec: &ProsodySpec) -> Prosody {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        fs::create_dir_all(dir.join("data")).unwrap();
        fs::create_dir_all(dir.join("certs")).unwrap();
        let (component_port, c2s_port) = (free_port(), free_port());
        let config = dir.join("prosody.cfg.lua");
        fs::write(&config, render(spec, &dir, component_port, c2s_port)).unwrap();
        let mut p = Prosody {
            child: None,
            dir,
            component_port,
            c2s_port,
            config,
            _tmp: tmp,
        };
        p.launch();
        p
    }

    fn launch(&mut self) {
        let out = fs::File::create(self.dir.join("stdout.log")).unwrap();
        let child = Command::new("prosody")
            .arg("--config")
            .arg(&self.config)
            .arg("-F")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("prosody is installed (the test command installs it: apt-get install prosody)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", self.component_port)).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("prosody exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "prosody did not listen in time:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Prosody's log so far.
    pub fn log(&self) -> String {
        let mut s = fs::read_to_string(self.dir.join("prosody.log")).unwrap_or_default();
        s.push_str(&fs::read_to_string(self.dir.join("stdout.log")).unwrap_or_default());
        s
    }

    /// Stop (SIGTERM, then SIGKILL after 5 s).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill_process(Pid::from_child(&child), Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stop and start again on the same ports (a Prosody restart: every room is gone).
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Prosody like a Jitsi deployment's for jitape: a MUC with jitape's module loaded, the
/// jitape component and a component for the simulated Jitsi side.
pub fn with_module(
    muc: &str,
    recorder: &str,
    recorder_secret: &str,
    sim: &str,
    sim_secret: &str,
) -> ProsodySpec {
    let plugins = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/prosody");
    ProsodySpec {
        components: vec![
            ComponentDecl {
                domain: recorder.into(),
                secret: recorder_secret.into(),
            },
            ComponentDecl {
                domain: sim.into(),
                secret: sim_secret.into(),
            },
        ],
        muc_domains: vec![muc.into()],
        muc_extra: format!(
            "  modules_enabled = {{ \"jitape\" }}\n  jitape_component = \"{recorder}\"\n"
        ),
        global_extra: format!("plugin_paths = {{ \"{plugins}\" }}\n"),
    }
}
