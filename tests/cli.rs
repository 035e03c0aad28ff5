//! The `jitape` command line as users run it.

use jitape_sim::harness as support;

use std::process::Command;

fn jitape() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_jitape"));
    c.env("NO_COLOR", "1").env("JITAPE_LOG", "warn");
    c
}

#[test]
fn demo_writes_exactly_one_verified_flac() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("rec");
    let run = jitape()
        .arg("demo")
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "jitape demo failed\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let flacs = support::files_with_suffix(&out, ".flac");
    assert_eq!(flacs.len(), 1, "{flacs:?}");
    assert_eq!(support::files_with_suffix(&out, ".json").len(), 1);
    assert!(support::files_with_suffix(&out, ".partial").is_empty());
    support::flac_test(&flacs[0]);
    assert!(
        stdout.contains(&flacs[0].display().to_string()),
        "prints where the FLAC is"
    );
    assert!(stdout.contains("silence elsewhere: yes"), "{stdout}");
    // And `jitape inspect` accepts what demo wrote.
    let inspect = jitape().arg("inspect").arg(&flacs[0]).output().unwrap();
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stdout)
    );
}

#[test]
fn a_world_readable_config_with_a_secret_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("j.toml");
    std::fs::write(
        &cfg,
        "[xmpp]\ndomain = \"r.example\"\nsecret = \"hunter2\"\nmuc_domains = [\"m.example\"]\n",
    )
    .unwrap();
    let check = |mode: u32| {
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(mode)).unwrap();
        let run = jitape()
            .arg("check-config")
            .arg("--config")
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(run.status.success());
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(
            !all.contains("hunter2"),
            "the secret is never printed: {all}"
        );
        String::from_utf8_lossy(&run.stderr).into_owned()
    };
    let open = check(0o644);
    assert!(
        open.contains("xmpp.secret") && open.contains("readable by every user"),
        "{open}"
    );
    assert!(!check(0o640).contains("warning"));
}

#[test]
fn check_config_names_the_bad_key() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("j.toml");
    std::fs::write(
        &cfg,
        "[xmpp]\ndomain = \"r.example\"\nmuc_domains = [\"m.example\"]\n",
    )
    .unwrap();
    let run = jitape()
        .arg("check-config")
        .arg("--config")
        .arg(&cfg)
        .env_remove("JITAPE_XMPP_SECRET")
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("xmpp.secret"));

    std::fs::write(&cfg, "[xmpp]\ndomain = \"r.example\"\nsecret = \"s\"\nmuc_domains = [\"m.example\"]\n[recording]\nsample_rate = 44100\n").unwrap();
    let run = jitape()
        .arg("check-config")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("recording.sample_rate"));

    let run = jitape()
        .arg("check-config")
        .arg("--config")
        .arg("config/jitape.toml")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(!stdout.contains("change-me"), "secrets are never printed");
    // The configuration in effect, as TOML a user can read (not a Rust debug dump).
    let effective: toml::Table = stdout.parse().expect("check-config prints TOML");
    assert_eq!(effective["xmpp"]["secret"].as_str(), Some("<redacted>"));
    assert_eq!(effective["xmpp"]["port"].as_integer(), Some(5347));
    assert!(effective["recording"].get("late_window").is_some());
}

#[test]
fn run_refuses_a_broken_config_without_starting() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("j.toml");
    std::fs::write(&cfg, "[xmpp]\nport = \"five\"\n").unwrap();
    let run = jitape()
        .arg("run")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("xmpp.port"));
}

/// A recording directory that exists but is not jitape's (docker creates a missing
/// bind-mount source owned by root, the image runs as uid 10001): `jitape run` exits at once
/// naming the directory, the uid and the fix, instead of running unready.
#[test]
fn run_fails_fast_when_the_recording_dir_is_not_writable() {
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let rec = tmp.path().join("recordings");
    std::fs::create_dir(&rec).unwrap();
    let cfg = tmp.path().join("j.toml");
    std::fs::write(
        &cfg,
        format!(
            "[xmpp]\nport = 9\ndomain = \"jitape.example\"\nsecret = \"s\"\nmuc_domains = [\"muc.example\"]\n[media]\nbind = \"127.0.0.1\"\n[recording]\ndir = \"{}\"\n[http]\nbind = \"off\"\n",
            rec.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let bin = env!("CARGO_BIN_EXE_jitape");
    let mut cmd = if rustix::process::geteuid().is_root() {
        // Root writes anywhere: run jitape as the image's user, in a directory root owns.
        let mut c = Command::new("setpriv");
        c.args(["--reuid=10001", "--regid=10001", "--clear-groups", bin]);
        c
    } else {
        std::fs::set_permissions(&rec, std::fs::Permissions::from_mode(0o555)).unwrap();
        Command::new(bin)
    };
    let mut child = cmd
        .env("NO_COLOR", "1")
        .env("JITAPE_LOG", "warn")
        .arg("run")
        .arg("--config")
        .arg(&cfg)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "jitape kept running with a recording directory it cannot write:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!status.success());
    for expected in [
        "is not writable",
        &rec.display().to_string(),
        "uid ",
        "chown ",
    ] {
        assert!(stderr.contains(expected), "`{expected}` in:\n{stderr}");
    }
    assert!(
        std::fs::read_dir(&rec).unwrap().next().is_none(),
        "nothing left behind"
    );
}
