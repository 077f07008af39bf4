//! Filesystem escapes: outside paths, denied subpaths, links, renames, /proc,
//! the profile, the audit log, a secret's source.

use super::*;

pub(super) fn cases() -> Vec<Escape> {
    vec![
        case(
            "fs.read-outside-grant",
            "read a file outside every grant",
            |c| {
                let f = c.outside.join("secret.txt");
                std::fs::write(&f, SECRET_TEXT).unwrap();
                refused(&run(c, &ws(true), &["read", &p(&f)]), &["EACCES"]);
            },
        ),
        case(
            "fs.list-outside-grant",
            "list a directory outside every grant",
            |c| {
                refused(&run(c, &ws(true), &["list", &p(&c.outside)]), &["EACCES"]);
            },
        ),
        case(
            "fs.write-outside-grant",
            "create a file outside every grant",
            |c| {
                let f = c.outside.join("planted");
                refused(&run(c, &ws(true), &["write", &p(&f)]), &["EACCES"]);
                assert!(!f.exists());
            },
        ),
        case(
            "fs.write-read-only-grant",
            "create a file in a read-only grant",
            |c| {
                let f = c.workspace.join("new");
                refused(&run(c, &ws(false), &["write", &p(&f)]), &["EACCES"]);
                assert!(!f.exists());
            },
        ),
        case(
            "fs.truncate-read-only-grant",
            "truncate a file in a read-only grant",
            |c| {
                let f = c.workspace.join("keep");
                std::fs::write(&f, "original").unwrap();
                refused(&run(c, &ws(false), &["truncate", &p(&f)]), &["EACCES"]);
                assert_eq!(std::fs::read_to_string(&f).unwrap(), "original");
            },
        ),
        case(
            "fs.read-host-passwd",
            "read /etc/passwd (not granted)",
            |c| {
                refused(&run(c, &ws(false), &["read", "/etc/passwd"]), &["EACCES"]);
            },
        ),
        case("fs.read-block-device", "read the host's disk device", |c| {
            let dev = ["/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/mem"]
                .into_iter()
                .find(|d| std::path::Path::new(d).exists())
                .unwrap_or("/dev/mem");
            refused(&run(c, &ws(false), &["read", dev]), &["EACCES"]);
        }),
        case(
            "fs.denied-subpath-read",
            "read a denied file inside the workspace",
            |c| {
                let prof = with_denies(c);
                refused(
                    &run(c, &prof, &["read", &p(&c.workspace.join(".env"))]),
                    &["EACCES"],
                );
            },
        ),
        case("fs.denied-subpath-write", "overwrite a denied file", |c| {
            let prof = with_denies(c);
            let env = c.workspace.join(".env");
            refused(&run(c, &prof, &["write", &p(&env)]), &["EACCES", "EROFS"]);
            assert_eq!(std::fs::read_to_string(&env).unwrap(), SECRET_TEXT);
        }),
        case(
            "fs.denied-subpath-symlink",
            "read a denied file through a new symlink",
            |c| {
                let prof = with_denies(c);
                let (env, link) = (c.workspace.join(".env"), c.workspace.join("link"));
                refused(
                    &run(c, &prof, &["symlink-read", &p(&env), &p(&link)]),
                    &["EACCES"],
                );
            },
        ),
        case(
            "fs.denied-subpath-hardlink",
            "hard-link a denied file to a new name",
            |c| {
                let prof = with_denies(c);
                let stolen = c.workspace.join("stolen");
                let r = run(
                    c,
                    &prof,
                    &["link", &p(&c.workspace.join(".env")), &p(&stolen)],
                );
                refused(&r, &["EXDEV", "EACCES", "EPERM"]);
                assert!(!stolen.exists());
            },
        ),
        case(
            "fs.denied-subpath-rename",
            "rename a denied file out of its mask",
            |c| {
                let prof = with_denies(c);
                let stolen = c.workspace.join("stolen");
                let r = run(
                    c,
                    &prof,
                    &["rename", &p(&c.workspace.join(".env")), &p(&stolen)],
                );
                refused(&r, &["EBUSY", "EXDEV", "EACCES", "EPERM"]);
                assert!(!stolen.exists());
            },
        ),
        case(
            "fs.denied-parent-rename",
            "move the parent of a denied directory away",
            |c| {
                let prof = with_denies(c);
                let moved = c.workspace.join("moved");
                let r = run(
                    c,
                    &prof,
                    &["rename", &p(&c.workspace.join(".git")), &p(&moved)],
                );
                refused(&r, &["EBUSY"]);
                assert!(!moved.exists());
            },
        ),
        case(
            "fs.denied-dir-add",
            "add a hook to a denied directory",
            |c| {
                let prof = with_denies(c);
                let hook = c.workspace.join(".git/hooks/post-checkout");
                refused(&run(c, &prof, &["write", &p(&hook)]), &["EACCES", "EROFS"]);
                assert!(!hook.exists());
            },
        ),
        case(
            "fs.symlink-to-outside",
            "read outside the grants through a symlink",
            |c| {
                let f = c.outside.join("secret.txt");
                std::fs::write(&f, SECRET_TEXT).unwrap();
                let link = c.workspace.join("link");
                refused(
                    &run(c, &ws(true), &["symlink-read", &p(&f), &p(&link)]),
                    &["EACCES"],
                );
            },
        ),
        case(
            "fs.hardlink-from-outside",
            "hard-link an outside file into the workspace",
            |c| {
                let f = c.outside.join("secret.txt");
                std::fs::write(&f, SECRET_TEXT).unwrap();
                let copy = c.workspace.join("copy");
                refused(
                    &run(c, &ws(true), &["link", &p(&f), &p(&copy)]),
                    &["EXDEV", "EACCES", "EPERM"],
                );
                assert!(!copy.exists());
            },
        ),
        case(
            "fs.rename-to-outside",
            "move a workspace file outside the grants",
            |c| {
                let f = c.workspace.join("f");
                std::fs::write(&f, "x").unwrap();
                let dst = c.outside.join("f");
                refused(
                    &run(c, &ws(true), &["rename", &p(&f), &p(&dst)]),
                    &["EXDEV", "EACCES"],
                );
                assert!(f.exists() && !dst.exists());
            },
        ),
        case(
            "fs.proc-other-process",
            "read /proc/<pid>/environ of a host process",
            |c| {
                let mut prof = ws(false);
                prof.read.push("/proc".into());
                let target = format!("/proc/{}/environ", std::process::id());
                refused(&run(c, &prof, &["read", &target]), &["ENOENT", "EACCES"]);
            },
        ),
        case(
            "fs.proc-sandbox-init",
            "read /proc/1/environ (cordon's init, outside the domain)",
            |c| {
                let mut prof = ws(false);
                prof.read.push("/proc".into());
                refused(&run(c, &prof, &["read", "/proc/1/environ"]), &["EACCES"]);
            },
        ),
        case(
            "fs.profile-read",
            "read the profile cordon runs under",
            |c| {
                let prof = ws(true);
                refused(
                    &run(c, &prof, &["read", &p(&c.profile_path(&prof))]),
                    &["EACCES"],
                );
            },
        ),
        case(
            "fs.profile-write",
            "rewrite the profile cordon runs under",
            |c| {
                let prof = ws(true);
                let path = c.profile_path(&prof);
                refused(&run(c, &prof, &["write", &p(&path)]), &["EACCES"]);
                assert_eq!(std::fs::read_to_string(&path).unwrap(), prof.toml());
            },
        ),
        case("fs.audit-log-read", "read the audit log", |c| {
            refused(
                &run(c, &ws(true), &["read", &p(&c.audit_path())]),
                &["EACCES"],
            );
        }),
        case(
            "fs.audit-log-append",
            "append a forged record to the audit log",
            |c| {
                refused(
                    &run(c, &ws(true), &["append", &p(&c.audit_path())]),
                    &["EACCES"],
                );
                let v = cordon_cmd()
                    .args(["audit", "verify"])
                    .arg(c.audit_path())
                    .output()
                    .unwrap();
                assert_eq!(v.status.code(), Some(0), "{v:?}");
            },
        ),
        case(
            "fs.secret-source-file",
            "read the file a secret is fetched from",
            |c| {
                let prof = brokered(c);
                let source = c.dir.path().join("secret-source");
                refused(&run(c, &prof, &["read", &p(&source)]), &["EACCES"]);
            },
        ),
    ]
}
