//! The broker: forged and oversized frames, undeclared names, refusals,
//! secrets, foreign peers.

use super::*;

pub(super) fn cases() -> Vec<Escape> {
    vec![
        case(
            "broker.unknown-frame-kind",
            "send a frame of an unknown kind",
            |c| {
                let r = run(c, &brokered(c), &["send-raw", "0100000063"]);
                reply_is(&r, 19, "unknown frame kind 99");
            },
        ),
        case("broker.oversized-frame", "announce a 4 GiB frame", |c| {
            let r = run(c, &brokered(c), &["send-raw", "ffffffff01"]);
            reply_is(&r, 19, "outside 1..=");
        }),
        case(
            "broker.descriptors-attached",
            "attach descriptors of the agent's choosing to an exec request",
            |c| {
                let marker = c.workspace.join("ran");
                let r = run(
                    c,
                    &brokered(c),
                    &["shim-call", "--with-fds", "tp", "write", &p(&marker)],
                );
                reply_is(&r, 19, "descriptor(s) sent with the request");
                assert!(!marker.exists(), "the tool ran");
            },
        ),
        case(
            "broker.half-frame-stall",
            "send half a frame and hold the connection",
            |c| {
                let r = run(c, &brokered(c), &["send-raw", "0a00", "6"]);
                let line = reply(&r);
                assert!(line.starts_with("reply 19") || line == "closed", "{r:#?}");
            },
        ),
        case(
            "broker.wrong-version",
            "speak a protocol version the supervisor does not",
            |c| {
                let r = run(
                    c,
                    &brokered(c),
                    &["shim-call", "--version", "99", "tp", "exit", "0"],
                );
                reply_is(&r, 19, "protocol version 99 is not supported");
            },
        ),
        case(
            "broker.undeclared-tool",
            "ask the broker for a tool the profile does not declare",
            |c| {
                run(c, &brokered(c), &["shim-call", "evil"]).killed_for("undeclared tool `evil`");
            },
        ),
        case(
            "broker.path-as-tool-name",
            "name a host binary's path as the tool",
            |c| {
                run(c, &brokered(c), &["shim-call", "/usr/bin/id"]).killed_for("undeclared tool");
            },
        ),
        case(
            "broker.denied-argv",
            "call a declared tool with a denied argv",
            |c| {
                let r = run(c, &brokered(c), &["shim-call", "cat", "/etc/shadow"]);
                reply_is(&r, 16, "deny[0]");
            },
        ),
        case(
            "broker.cwd-outside",
            "run a declared tool from outside its cwd trees",
            |c| {
                let r = run(
                    c,
                    &brokered(c),
                    &["shim-call", "--cwd", "/", "cat", "/etc/hostname"],
                );
                reply_is(&r, 16, "working directory `/` is outside");
            },
        ),
        case(
            "broker.tool-reads-denied-path",
            "have a tool read a file denied to the agent",
            |c| {
                let r = run(
                    c,
                    &brokered(c),
                    &["shim-call", "tp", "read", &p(&c.workspace.join(".env"))],
                );
                reply_is(&r, 17, "1");
                no_secret(&r);
            },
        ),
        case(
            "broker.secret-not-exposed",
            "fetch a secret's value that is not exposed",
            |c| {
                let r = run(c, &brokered(c), &["shim-secret", "FROM_FILE"]);
                reply_is(&r, 16, "not exposed");
                no_secret(&r);
            },
        ),
        case(
            "broker.undeclared-secret",
            "fetch a secret the profile does not declare",
            |c| {
                let r = run(c, &brokered(c), &["shim-secret", "AWS_SECRET_ACCESS_KEY"]);
                reply_is(&r, 16, "not a declared secret");
            },
        ),
        case(
            "broker.outside-peer",
            "use a session's broker from a process outside the sandbox",
            |c| {
                let (mut b, sock) = other_session(c);
                let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
                let mut reply = Vec::new();
                s.read_to_end(&mut reply).unwrap();
                drop(b.stdin.take());
                let _ = b.wait();
                assert!(
                    String::from_utf8_lossy(&reply).contains("not in this session"),
                    "{reply:?}"
                );
            },
        ),
    ]
}
