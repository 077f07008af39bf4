//! Landlock filesystem rules on the real kernel: what is outside the
//! profile cannot be read, written or executed.

mod common;
use common::*;

#[test]
fn reading_inside_the_workspace_works_and_outside_fails() {
    let c = Case::new();
    std::fs::write(c.workspace.join("inside.txt"), "in").unwrap();
    std::fs::write(c.outside.join("secret.txt"), "top secret").unwrap();
    let mut p = Profile::base();
    p.read.push("{workspace}".into());
    c.run(&p, &["read", &path_str(&c.workspace.join("inside.txt"))])
        .ok();
    let r = c.run(&p, &["read", &path_str(&c.outside.join("secret.txt"))]);
    r.failed_with(&["EACCES"]);
    assert!(!r.stderr.contains("top secret"));
    // Nor can the agent list what is outside.
    c.run(&p, &["list", &path_str(&c.outside)])
        .failed_with(&["EACCES"]);
    // /etc/passwd is not in the profile either.
    c.run(&p, &["read", "/etc/passwd"]).failed_with(&["EACCES"]);
}

#[test]
fn writing_outside_write_grants_fails_and_leaves_no_file() {
    let c = Case::new();
    let mut p = Profile::base();
    p.read.push("{workspace}".into());
    p.read.push(path_str(&c.outside));
    // Read-only workspace: no write, no truncate, no new directory.
    let existing = c.workspace.join("keep.txt");
    std::fs::write(&existing, "original").unwrap();
    c.run(&p, &["write", &path_str(&c.workspace.join("new.txt"))])
        .failed_with(&["EACCES"]);
    c.run(&p, &["append", &path_str(&existing)])
        .failed_with(&["EACCES"]);
    c.run(&p, &["truncate", &path_str(&existing)])
        .failed_with(&["EACCES"]);
    c.run(&p, &["mkdir", &path_str(&c.workspace.join("d"))])
        .failed_with(&["EACCES"]);
    c.run(&p, &["write", &path_str(&c.outside.join("x"))])
        .failed_with(&["EACCES"]);
    assert!(!c.workspace.join("new.txt").exists());
    assert!(!c.outside.join("x").exists());
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "original");

    // With write granted, the same calls work.
    p.write.push("{workspace}".into());
    c.run(&p, &["write", &path_str(&c.workspace.join("new.txt"))])
        .ok();
    assert_eq!(
        std::fs::read_to_string(c.workspace.join("new.txt")).unwrap(),
        "written by probe"
    );
}

#[test]
fn executing_outside_exec_grants_is_refused_or_kills() {
    let c = Case::new();
    let mut p = Profile::base();
    p.read.push("/usr/bin".into());
    // /usr/bin/true is readable but not executable under this profile: by
    // default that is divergence and the whole sandbox dies...
    let r = c.run(&p, &["exec", "/usr/bin/true"]);
    r.killed_for("executed `/usr/bin/true`");
    // ...and with undeclared_tool = "deny" the exec just fails.
    p.extra = "[divergence]\nundeclared_tool = \"deny\"\n".into();
    c.run(&p, &["exec", "/usr/bin/true"])
        .failed_with(&["EACCES"]);
    // A program the agent writes into its workspace cannot be run either.
    p.write.push("{workspace}".into());
    let copy = c.workspace.join("mytrue");
    std::fs::copy("/usr/bin/true", &copy).unwrap();
    c.run(&p, &["exec", &path_str(&copy)])
        .failed_with(&["EACCES"]);
    // Granting exec makes it work: the denial above came from the profile.
    p.exec.push("/usr/bin/true".into());
    let r = c.run(&p, &["exec", "/usr/bin/true"]);
    assert_eq!(r.code, Some(0), "{r:#?}");
}

#[test]
fn exec_through_a_symlink_or_relative_path_is_still_checked() {
    let c = Case::new();
    let mut p = Profile::base();
    p.write.push("{workspace}".into());
    p.read.push("/usr/bin".into());
    std::os::unix::fs::symlink("/usr/bin/id", c.workspace.join("innocent")).unwrap();
    c.run(&p, &["exec", &path_str(&c.workspace.join("innocent"))])
        .killed_for("executed `/usr/bin/id`");
    // A path that does not exist is just ENOENT: execvp tries many.
    c.run(&p, &["exec", &path_str(&c.workspace.join("nothing-here"))])
        .failed_with(&["ENOENT"]);
}

#[test]
fn the_session_home_and_tmp_are_private_and_removed() {
    let c = Case::new();
    let mut p = Profile::base();
    p.write.push("{home}".into());
    p.write.push("{tmp}".into());
    let r = c.run(&p, &["env"]);
    assert_eq!(r.code, Some(0), "{r:#?}");
    let home = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("HOME="))
        .unwrap()
        .to_string();
    let tmp = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("TMPDIR="))
        .unwrap()
        .to_string();
    assert!(
        home.contains("/cordon-") && tmp.contains("/cordon-"),
        "{r:#?}"
    );
    assert!(
        !std::path::Path::new(&home).exists(),
        "session HOME {home} left behind"
    );
    assert!(
        !std::path::Path::new(&tmp).exists(),
        "session TMP {tmp} left behind"
    );
}

/// `[environment] home = "persistent"`: the profile's HOME is kept across
/// its sessions (STATE/homes/NAME, 0700), never another profile's, one
/// session at a time; the default stays a fresh HOME per session.
#[test]
fn a_persistent_home_is_kept_per_profile_and_a_fresh_one_is_not() {
    let c = Case::new();
    let state = c.dir.path().join("state");
    let mut p = Profile::base();
    p.exec.push("/usr/bin/dash".into());
    p.exec.push("/usr/bin/cat".into());
    p.write.push("{home}".into());
    let run = |p: &Profile, script: &str| {
        let mut cmd = c.cordon_run(p);
        cmd.env("CORDON_STATE_DIR", &state)
            .args(["/usr/bin/dash", "-c", script]);
        Run::from(cmd.output().unwrap())
    };
    let keep = "echo remembered > \"$HOME/settings\"; echo home=$HOME";
    let read = "/usr/bin/cat \"$HOME/settings\" 2>&1 || echo missing";
    // Fresh (the default): nothing survives the session.
    let r = run(&p, keep);
    assert_eq!(r.code, Some(0), "{r:#?}");
    let r = run(&p, read);
    assert!(r.stdout.contains("missing"), "{r:#?}");
    // Persistent: the second session finds what the first kept.
    let mut kept = p.clone();
    kept.name = "keeper";
    kept.extra = "[environment]\nhome = \"persistent\"\n".into();
    let r = run(&kept, keep);
    assert_eq!(r.code, Some(0), "{r:#?}");
    let home = state.join("homes/keeper");
    assert!(
        r.stdout.contains(&format!("home={}", home.display())),
        "{r:#?}"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&home).unwrap().mode() & 0o777, 0o700);
    let r = run(&kept, read);
    assert!(r.stdout.contains("remembered"), "{r:#?}");
    // Another profile's persistent home is its own.
    let mut other = kept.clone();
    other.name = "other";
    let r = run(&other, read);
    assert!(r.stdout.contains("missing"), "{r:#?}");
    // One session at a time: while something holds the home's lock, a
    // session is refused before anything runs.
    let held = std::fs::File::open(&home).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&held);
    // SAFETY: flock only reads the integer fd, which `held` keeps open.
    let locked = unsafe { libc::flock(fd, libc::LOCK_EX) };
    assert_eq!(locked, 0);
    let r = run(&kept, read);
    assert_eq!(r.code, Some(125), "{r:#?}");
    assert!(
        r.stderr
            .contains("is in use by another session of profile `keeper`"),
        "{r:#?}"
    );
    drop(held);
    // A home others can read is refused, with the fix.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
    let r = run(&kept, read);
    assert_eq!(r.code, Some(125), "{r:#?}");
    assert!(r.stderr.contains("chmod 700"), "{r:#?}");
}
