#![allow(clippy::unwrap_used)] // a test fails by panicking

use super::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const PROFILE: &str = "[profile]\nname = \"p\"\n";

fn errors(text: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "p.toml", PROFILE);
    let cfg = write(dir.path(), "cordon.toml", text);
    match load(&cfg) {
        Ok(_) => vec![],
        Err(e) => e
            .diagnostics
            .iter()
            .map(|d| {
                let s = d.to_string();
                s.split_once("cordon.toml:")
                    .map_or(s.clone(), |(_, r)| r.to_string())
            })
            .collect(),
    }
}

#[test]
fn a_full_config_loads() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "p.toml", PROFILE);
    let cfg = write(
        dir.path(),
        "cordon.toml",
        r#"
[audit]
path = "/var/log/cordon/audit.jsonl"

[control]
socket = "/run/x/c.sock"
allow_uids = [1000, "root"]
allow_gids = [27, "root"]

[service]
stop_timeout = "10s"

[[agent]]
name = "triage"
profile = "p.toml"
command = ["/usr/bin/python3", "agent.py"]
workspace = "/srv/triage"
intent = "triage issues"
user = "cordon-agent"
restart = { policy = "always", initial_delay = "500ms", max_delay = "30s", max_failures = 3, window = "1m" }

[[agent]]
name = "nightly"
profile = "p.toml"
command = ["/usr/bin/true"]
autostart = false
restart = "no"
"#,
    );
    let c = load(&cfg).unwrap();
    assert_eq!(c.agents.len(), 2);
    let a = &c.agents[0];
    assert_eq!(a.profile, dir.path().join("p.toml"));
    assert_eq!(a.profile_name, "p");
    assert_eq!(a.restart.policy, RestartPolicy::Always);
    assert_eq!(a.restart.initial_delay, Duration::from_millis(500));
    assert_eq!(a.restart.max_failures, 3);
    assert!(a.autostart);
    assert!(!c.agents[1].autostart);
    assert_eq!(c.agents[1].restart.policy, RestartPolicy::No);
    assert_eq!(c.control.allow_uids, vec![1000, 0]);
    assert_eq!(c.control.allow_gids, vec![27, 0]);
    assert_eq!(c.stop_timeout, Duration::from_secs(10));
}

#[test]
fn every_mistake_has_its_line_and_column() {
    let e = errors(
        "[[agent]]\nname = \"a\"\nprofile = \"p.toml\"\ncommand = \"/bin/x\"\nrestart = \"sometimes\"\nautostrat = true\n\n[contrl]\n",
    );
    assert_eq!(
        e,
        vec![
            "4:11: `command` expects an array of strings, program first, got a string",
            "5:11: `restart` must be \"no\" or \"on-failure\" or \"always\", got \"sometimes\"",
            "6:1: unknown key `autostrat` in [[agent]]; did you mean `autostart`? valid keys: name, profile, command, workspace, intent, user, group, restart, autostart, description",
            "8:2: unknown section `contrl`; did you mean `control`? valid sections: [[agent]], [audit], [control], [service]",
        ]
    );
}

#[test]
fn missing_keys_duplicates_and_bad_backoff_are_reported() {
    let e = errors(
        "[[agent]]\nname = \"a\"\nprofile = \"p.toml\"\ncommand = [\"/bin/x\"]\n[[agent]]\nname = \"a\"\nprofile = \"p.toml\"\ncommand = [\"/bin/x\"]\n[[agent]]\nname = \"b\"\nrestart = { initial_delay = \"10s\", max_delay = \"1s\", max_failures = 0 }\n",
    );
    assert!(
        e.iter()
            .any(|l| l.starts_with("11:") && l.contains("`max_failures` expects")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|l| l.starts_with("11:") && l.contains("`max_delay` must be at least")),
        "{e:?}"
    );
    assert!(e.iter().any(|l| l.contains("needs `profile`")), "{e:?}");
    assert!(e.iter().any(|l| l.contains("needs `command`")), "{e:?}");
    assert!(
        e.iter()
            .any(|l| l.contains("agent name `a` is already used")),
        "{e:?}"
    );
}

#[test]
fn a_broken_profile_is_an_error_of_the_config_and_its_own() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad.toml",
        "[profile]\nname = \"b\"\n[filesystem]\nreed = []\n",
    );
    let cfg = write(
        dir.path(),
        "cordon.toml",
        "[[agent]]\nname = \"a\"\nprofile = \"bad.toml\"\ncommand = [\"/bin/x\"]\n",
    );
    let e = load(&cfg).unwrap_err().to_string();
    assert!(e.contains("cordon.toml:3:11: profile"), "{e}");
    assert!(e.contains("bad.toml:4:1: unknown key `reed`"), "{e}");
}

#[test]
fn unknown_user_and_group_names_are_errors_where_written() {
    let e = errors("[control]\nallow_uids = [\"cordon-no-such-user\"]\nallow_gids = [1, \"cordon-no-such-group\", 1.5]\n");
    assert_eq!(
        e,
        vec![
            "2:15: `allow_uids`: no such user `cordon-no-such-user`",
            "3:18: `allow_gids`: no such group `cordon-no-such-group`",
            "3:42: `allow_gids` expects numeric ids 0-4294967294 or names, got a float",
        ]
    );
}
