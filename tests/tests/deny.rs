#![allow(clippy::unwrap_used)] // helpers in a test file: a panic is a failed test
//! `[filesystem] deny`: paths inside a granted workspace that stay hidden,
//! whatever the agent tries.

mod common;
use common::*;

struct Ws {
    case: Case,
    profile: Profile,
    env: std::path::PathBuf,
    hooks: std::path::PathBuf,
}

fn workspace_with_secrets() -> Ws {
    let case = Case::new();
    let env = case.workspace.join(".env");
    std::fs::write(&env, "API_KEY=super-secret-value").unwrap();
    let hooks = case.workspace.join(".git/hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(hooks.join("pre-commit"), "#!/bin/sh\necho hook\n").unwrap();
    let mut profile = Profile::base();
    profile.read.push("{workspace}".into());
    profile.write.push("{workspace}".into());
    profile.deny.push("{workspace}/.env".into());
    profile.deny.push("{workspace}/.git/hooks".into());
    Ws {
        case,
        profile,
        env,
        hooks,
    }
}

fn unchanged(ws: &Ws) {
    assert_eq!(
        std::fs::read_to_string(&ws.env).unwrap(),
        "API_KEY=super-secret-value"
    );
    assert_eq!(
        std::fs::read_to_string(ws.hooks.join("pre-commit")).unwrap(),
        "#!/bin/sh\necho hook\n"
    );
    assert_eq!(std::fs::read_dir(&ws.hooks).unwrap().count(), 1);
}

#[test]
fn a_denied_file_cannot_be_read_or_written() {
    let ws = workspace_with_secrets();
    let (c, p) = (&ws.case, &ws.profile);
    let r = c.run(p, &["read", &path_str(&ws.env)]);
    r.failed_with(&["EACCES"]);
    assert!(!r.stderr.contains("super-secret"));
    c.run(p, &["write", &path_str(&ws.env)])
        .failed_with(&["EACCES", "EROFS"]);
    c.run(p, &["append", &path_str(&ws.env)])
        .failed_with(&["EACCES", "EROFS"]);
    c.run(p, &["truncate", &path_str(&ws.env)])
        .failed_with(&["EACCES", "EROFS"]);
    c.run(p, &["chmod", &path_str(&ws.env)])
        .failed_with(&["EROFS", "EPERM"]);
    // The rest of the workspace is still writable.
    c.run(p, &["write", &path_str(&c.workspace.join("fine.txt"))])
        .ok();
    unchanged(&ws);
}

#[test]
fn a_denied_file_cannot_be_renamed_out_or_linked() {
    let ws = workspace_with_secrets();
    let (c, p) = (&ws.case, &ws.profile);
    let out = c.workspace.join("stolen");
    c.run(p, &["rename", &path_str(&ws.env), &path_str(&out)])
        .failed_with(&["EBUSY", "EXDEV", "EACCES", "EPERM"]);
    c.run(p, &["link", &path_str(&ws.env), &path_str(&out)])
        .failed_with(&["EXDEV", "EACCES", "EPERM"]);
    assert!(!out.exists());
    unchanged(&ws);
}

#[test]
fn the_parents_of_a_denied_path_cannot_be_moved_away() {
    // Renaming .git would carry the hooks out from under the mask: in a
    // later session the moved copy is unmasked and can be edited and put
    // back. cordon pins the ancestors, so the rename fails.
    let ws = workspace_with_secrets();
    let (c, p) = (&ws.case, &ws.profile);
    let git = c.workspace.join(".git");
    let moved = c.workspace.join("moved-git");
    c.run(p, &["rename", &path_str(&git), &path_str(&moved)])
        .failed_with(&["EBUSY"]);
    assert!(!moved.exists());
    unchanged(&ws);
}

#[test]
fn a_symlink_does_not_reach_denied_content() {
    let ws = workspace_with_secrets();
    let (c, p) = (&ws.case, &ws.profile);
    let link = c.workspace.join("innocent-link");
    let r = c.run(p, &["symlink-read", &path_str(&ws.env), &path_str(&link)]);
    r.failed_with(&["EACCES"]);
    assert!(!r.stderr.contains("super-secret"));
    let link2 = c.workspace.join("hook-link");
    c.run(
        p,
        &[
            "symlink-read",
            &path_str(&ws.hooks.join("pre-commit")),
            &path_str(&link2),
        ],
    )
    .failed_with(&["EACCES"]);
    // A symlink planted before the run, too.
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&ws.env, c.workspace.join("planted")).unwrap();
    c.run(p, &["read", &path_str(&c.workspace.join("planted"))])
        .failed_with(&["EACCES"]);
    unchanged(&ws);
}

#[test]
fn a_denied_directory_cannot_be_listed_read_or_added_to() {
    let ws = workspace_with_secrets();
    let (c, p) = (&ws.case, &ws.profile);
    c.run(p, &["list", &path_str(&ws.hooks)])
        .failed_with(&["EACCES"]);
    c.run(p, &["read", &path_str(&ws.hooks.join("pre-commit"))])
        .failed_with(&["EACCES"]);
    c.run(p, &["write", &path_str(&ws.hooks.join("post-checkout"))])
        .failed_with(&["EACCES", "EROFS"]);
    unchanged(&ws);
}

#[test]
fn a_hard_linked_deny_target_is_refused_before_start() {
    let ws = workspace_with_secrets();
    let (c, p) = (&ws.case, &ws.profile);
    std::fs::hard_link(&ws.env, c.workspace.join("second-name")).unwrap();
    let r = c.run(p, &["read", &path_str(&c.workspace.join("second-name"))]);
    assert_eq!(r.code, Some(125), "{r:#?}");
    assert!(r.stderr.contains("hard links"), "{r:#?}");
    assert!(!r.stderr.contains("super-secret"));
}
