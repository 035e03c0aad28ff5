//! Unit tests of `hook`.

use super::*;

fn files() -> FinalizedFiles {
    FinalizedFiles {
        room: "room@conference.example".into(),
        room_dir: "room@conference.example".into(),
        meeting_id: Some("m-1".into()),
        flac: "/rec/r/20261121T193509Z.flac".into(),
        sidecar: "/rec/r/20261121T193509Z.json".into(),
        stems: vec!["/rec/r/a.flac".into(), "/rec/r/b.flac".into()],
    }
}

fn sh(script: &str, timeout: Duration) -> HookSettings {
    HookSettings::new(
        "/bin/sh",
        vec!["-c".into(), script.into(), "hook".into()],
        timeout,
    )
}

#[tokio::test]
async fn success_gets_paths_as_arguments_and_environment() {
    let script = r#"printf '%s|' "$@"; printf '%s|%s|%s|%s|%s|' "$JITAPE_FLAC" \
            "$JITAPE_SIDECAR" "$JITAPE_ROOM" "$JITAPE_ROOM_DIR" "$JITAPE_MEETING_ID"; \
            printf '%s' "$JITAPE_STEMS" | tr '\n' ','; echo err >&2"#;
    let o = run_hook(&sh(script, Duration::from_secs(10)), &files()).await;
    assert_eq!(o.status, HookStatus::Success, "{o:?}");
    assert_eq!(
        o.stdout,
        "/rec/r/20261121T193509Z.flac|/rec/r/20261121T193509Z.json|/rec/r/a.flac|\
             /rec/r/b.flac|/rec/r/20261121T193509Z.flac|/rec/r/20261121T193509Z.json|\
             room@conference.example|room@conference.example|m-1|/rec/r/a.flac,/rec/r/b.flac"
    );
    assert_eq!(o.stderr, "err\n");
    assert!(!o.output_truncated);
}

#[tokio::test]
async fn nonzero_exit_is_reported_with_its_code() {
    let o = run_hook(
        &sh("echo failing >&2; exit 3", Duration::from_secs(10)),
        &files(),
    )
    .await;
    assert_eq!(
        o.status,
        HookStatus::Failed {
            code: Some(3),
            signal: None
        }
    );
    assert!(!o.is_success());
    assert_eq!(o.stderr, "failing\n");
}

#[tokio::test]
async fn hanging_hook_and_its_children_are_killed_after_the_timeout() {
    let script = "sleep 30 & echo started; sleep 30; wait";
    let o = run_hook(&sh(script, Duration::from_secs(1)), &files()).await;
    assert_eq!(o.status, HookStatus::TimedOut);
    // The background `sleep` holds the stdout pipe too: only because the whole process
    // group was killed did the pipe close, so the output is complete, not cut by the grace.
    assert_eq!(o.stdout, "started\n");
    assert!(!o.output_truncated);
}

#[tokio::test]
async fn output_is_bounded() {
    let mut cfg = sh(
        "head -c 100000 /dev/zero | tr '\\0' x",
        Duration::from_secs(10),
    );
    cfg.max_output = 1000;
    let o = run_hook(&cfg, &files()).await;
    assert_eq!(o.status, HookStatus::Success);
    assert_eq!(o.stdout.len(), 1000);
    assert!(o.output_truncated);
}

#[tokio::test]
async fn missing_program_is_a_spawn_failure() {
    let cfg = HookSettings::new("/nonexistent/hook", vec![], Duration::from_secs(1));
    let o = run_hook(&cfg, &files()).await;
    assert!(matches!(o.status, HookStatus::SpawnFailed(_)), "{o:?}");
}

#[test]
fn inherited_jitape_variables_are_removed() {
    let inherited = ["PATH", "JITAPE_XMPP_SECRET", "JITAPE_HTTP_TOKEN"].map(OsString::from);
    let cmd = command(
        &sh("true", Duration::from_secs(1)),
        &files(),
        inherited.into_iter(),
    );
    let envs: Vec<_> = cmd.as_std().get_envs().collect();
    for secret in ["JITAPE_XMPP_SECRET", "JITAPE_HTTP_TOKEN"] {
        assert!(
            envs.contains(&(secret.as_ref(), None)),
            "{secret} not removed: {envs:?}"
        );
    }
    assert!(!envs.iter().any(|(k, _)| *k == "PATH"));
    assert!(envs.iter().any(|(k, v)| *k == "JITAPE_FLAC" && v.is_some()));
}
