//! `cordon-shim mcp NAME`: an MCP session. The agent's MCP client speaks
//! to the shim's stdin and stdout; the shim hands those to the broker,
//! which runs the profile's `[mcp.NAME]` server under its own sandbox
//! (as a tool call: the same launcher, secrets, masking and
//! cancellation) and relays between the two through [`crate::mcp::Relay`],
//! deciding every `tools/call` on the way ([`super::mcp_call`]).
//!
//! Threads, all scoped to the connection: this one runs the server until
//! it exits (or the shim goes away, which stops it); one reads the
//! agent, one the server, one expires calls the server sits on. No lock
//! is held while writing to either side, so a side that stops reading
//! stalls only its own direction.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cordon_shim::protocol::Reply;

use super::call_env::{end_record, pass_env};
use super::mcp_server::{as_tool, cwd_refusal};
use super::secrets::CallSecrets;
use super::serve::Authenticated;
use super::tool::{self, Ending};
use super::wire::send_reply;
use super::{mcp_call, refuse, Session};
use crate::audit::{Decision, Kind, Record};
use crate::mcp::{AgentStep, FrameReader, Relay, ServerPolicy, ServerStep};
use crate::profile::{McpServer, Tool};

/// How often the reader of the agent looks at the stop flag, and the
/// expirer at the clock.
const TICK: Duration = Duration::from_millis(200);
/// Calls waiting for a person at once, each in a thread of its own (one
/// waiting must not hold up the others); beyond, they wait in turn.
const MAX_DECIDING: usize = 16;

/// The shim's request.
pub(super) struct McpRequest {
    pub server: Vec<u8>,
    pub env: Vec<(Vec<u8>, Vec<u8>)>,
}

/// One agent-server conversation, shared by its threads.
pub(super) struct Conversation<'s> {
    pub session: &'s Session,
    pub server: &'s McpServer,
    /// The server as a tool (how it is run, and what approvals show).
    pub tool: Tool,
    pub cwd: PathBuf,
    pub pid: u32,
    relay: Mutex<Relay>,
    agent_out: Mutex<File>,
    server_in: Mutex<Option<File>>,
    /// `tools/call`s admitted so far (`max_calls`).
    pub calls: AtomicU32,
    deciding: AtomicUsize,
    pub stop: AtomicBool,
}

impl Conversation<'_> {
    pub fn relay(&self) -> MutexGuard<'_, Relay> {
        self.relay.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes one frame to the agent (a failure means it is gone; the
    /// reader notices).
    pub fn to_agent(&self, frame: &[u8]) {
        let mut out = self.agent_out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = out.write_all(frame);
    }

    /// Writes one frame to the server; false when its input is closed.
    pub fn to_server(&self, frame: &[u8]) -> bool {
        let mut input = self.server_in.lock().unwrap_or_else(|e| e.into_inner());
        match input.as_mut() {
            Some(f) => f.write_all(frame).is_ok(),
            None => false,
        }
    }

    fn close_server_input(&self) {
        self.server_in
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }
}

/// Serves one `cordon-shim mcp NAME` connection to its end.
pub(super) fn serve(
    session: &Session,
    mut conn: Authenticated,
    req: McpRequest,
    fds: Vec<OwnedFd>,
) {
    let name = String::from_utf8_lossy(&req.server).into_owned();
    let call = session.next_call_id();
    let cwd = fds
        .get(3)
        .and_then(|fd| std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok())
        .unwrap_or_default();
    let mut base = Record::new(Kind::Call, &session.id)
        .profile(&session.profile.name)
        .call(call)
        .tool(format!("mcp:{name}"))
        .cwd_bytes(std::os::unix::ffi::OsStrExt::as_bytes(cwd.as_os_str()))
        .pid(conn.pid);
    if let Some(i) = &session.intent {
        base = base.intent(i.clone());
    }
    let divergence = &session.profile.divergence;
    let Some(server) = session.profile.mcp.get(&name) else {
        let what = format!(
            "ran undeclared MCP server `{}` through the shim",
            name.escape_debug()
        );
        refuse::refuse(
            session,
            &mut conn.stream,
            base,
            conn.pid,
            &what,
            divergence.undeclared_tool,
        );
        return;
    };
    if let Some(why) = cwd_refusal(session, server, &cwd) {
        refuse::refuse(
            session,
            &mut conn.stream,
            base,
            conn.pid,
            &why,
            divergence.denied_action,
        );
        return;
    }
    let workspace = session
        .placeholders
        .workspace
        .to_string_lossy()
        .into_owned();
    let policy = match ServerPolicy::compile(server, &workspace) {
        Ok(p) => p,
        Err(e) => {
            send_reply(
                &mut conn.stream,
                &Reply::Error {
                    message: e.to_string(),
                },
            );
            return;
        }
    };
    let mut started = base
        .decision(Decision::Allow)
        .detail("MCP server started".to_string());
    if !server.secrets.is_empty() {
        started = started.secrets(
            server
                .secrets
                .iter()
                .map(|s| s.name.clone())
                .collect::<Vec<_>>(),
        );
    }
    if let Err(e) = session.record(started) {
        let reason =
            format!("the audit log cannot be written ({e}); no MCP server runs unrecorded");
        send_reply(&mut conn.stream, &Reply::Denied { reason });
        return;
    }
    let secrets = match CallSecrets::fetch_for(session, &server.secrets, None) {
        Ok(s) => s,
        Err(reason) => {
            let end = end_record(session, call, &format!("mcp:{name}")).reason(reason.clone());
            let _ = session.record(end.decision(Decision::Deny));
            send_reply(&mut conn.stream, &Reply::Denied { reason });
            return;
        }
    };
    let started_at = Instant::now();
    let ending = match converse(
        session, &mut conn, server, policy, &req, fds, call, &cwd, &secrets,
    ) {
        Ok(e) => e,
        Err(e) => Ending::failed(format!("starting MCP server `{name}`: {e}")),
    };
    drop(secrets);
    let ms = u64::try_from(started_at.elapsed().as_millis()).unwrap_or(u64::MAX);
    let end = end_record(session, call, &format!("mcp:{name}")).duration_ms(ms);
    let _ = session.record(ending.record(end));
    send_reply(&mut conn.stream, &ending.reply);
}

/// Runs the server and relays until it ends.
#[allow(clippy::too_many_arguments)] // one call's parts, each used once
fn converse(
    session: &Session,
    conn: &mut Authenticated,
    server: &McpServer,
    policy: ServerPolicy,
    req: &McpRequest,
    fds: Vec<OwnedFd>,
    call: u64,
    cwd: &Path,
    secrets: &CallSecrets<'_>,
) -> std::io::Result<Ending> {
    let mut fds = fds.into_iter();
    let (Some(agent_in), Some(agent_out), Some(stderr), Some(cwd_fd)) =
        (fds.next(), fds.next(), fds.next(), fds.next())
    else {
        return Err(std::io::Error::other("the shim sent too few descriptors"));
    };
    let (server_in_r, server_in_w) = crate::sys::fd::pipe().map_err(std::io::Error::from)?;
    let (server_out_r, server_out_w) = crate::sys::fd::pipe().map_err(std::io::Error::from)?;
    let conv = Conversation {
        session,
        server,
        tool: as_tool(server),
        cwd: cwd.to_path_buf(),
        pid: conn.pid,
        relay: Mutex::new(Relay::new(policy, server.max_message)),
        agent_out: Mutex::new(File::from(agent_out)),
        server_in: Mutex::new(Some(File::from(server_in_w))),
        calls: AtomicU32::new(0),
        deciding: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    };
    let workspace = session
        .placeholders
        .workspace
        .to_string_lossy()
        .into_owned();
    let args: Vec<Vec<u8>> = server.command[1..]
        .iter()
        .map(|a| a.replace("{workspace}", &workspace).into_bytes())
        .collect();
    let env = pass_env(&server.env, &req.env);
    let ending = std::thread::scope(|s| {
        let c = &conv;
        s.spawn(move || agent_loop(s, c, agent_in));
        s.spawn(move || server_loop(c, server_out_r));
        s.spawn(move || expire_loop(c));
        let arg_slices: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        // The server's stdio: our pipes, the shim's stderr; its working
        // directory the shim's (checked).
        let run_fds = [server_in_r, server_out_w, stderr, cwd_fd];
        let run = tool::Call {
            id: call,
            cwd,
            args: &arg_slices,
            env: &env,
            fds: &run_fds,
        };
        let ending = match tool::run(session, &conv.tool, &run, secrets, &mut conn.stream) {
            Ok(e) => e,
            Err(e) => Ending::failed(e.to_string()),
        };
        drop(run_fds);
        conv.stop.store(true, Ordering::Release);
        conv.close_server_input();
        let left = conv.relay().abandon();
        for e in &left {
            mcp_call::ended(c, e, false);
        }
        ending
    });
    Ok(ending)
}

/// Reads the agent until it closes (then the server's input is closed,
/// so the server ends too) or the conversation stops.
fn agent_loop<'scope>(
    s: &'scope std::thread::Scope<'scope, '_>,
    c: &'scope Conversation<'_>,
    input: OwnedFd,
) {
    let mut frames = FrameReader::new(
        Polled {
            file: File::from(input),
            stop: &c.stop,
        },
        c.server.max_message,
    );
    while let Ok(Some(frame)) = frames.next_frame() {
        let step = c.relay().from_agent(frame);
        match step {
            AgentStep::ToServer(b) => {
                c.to_server(&b);
            }
            AgentStep::ToAgent(b) => c.to_agent(&b),
            AgentStep::Refused {
                reply,
                reason,
                undeclared,
            } => {
                let divergence = &c.session.profile.divergence;
                let action = match undeclared {
                    Some(_) => divergence.undeclared_tool,
                    None => divergence.denied_action,
                };
                let charged = mcp_call::count(c, &reason, undeclared.as_deref(), action);
                if charged.killed() {
                    break;
                }
                if let Some(r) = reply {
                    c.to_agent(&r);
                }
            }
            AgentStep::Call(call) => {
                let decided = mcp_call::decide(c, &call);
                // Only a call that waits for a person gets a thread (and
                // only so many at once): the rest are admitted in turn.
                let asks = decided.verdict == crate::policy::Verdict::Approve;
                if asks && c.deciding.fetch_add(1, Ordering::AcqRel) < MAX_DECIDING {
                    s.spawn(move || {
                        mcp_call::admit(c, &call, decided);
                        c.deciding.fetch_sub(1, Ordering::AcqRel);
                    });
                } else {
                    if asks {
                        c.deciding.fetch_sub(1, Ordering::AcqRel);
                    }
                    mcp_call::admit(c, &call, decided);
                }
            }
            AgentStep::Dropped(why) => {
                tracing::debug!(server = %c.server.name, %why, "mcp: agent message not relayed")
            }
        }
    }
    c.close_server_input();
}

/// Reads the server until its output closes.
fn server_loop(c: &Conversation<'_>, output: OwnedFd) {
    let mut frames = FrameReader::new(File::from(output), c.server.max_message);
    while let Ok(Some(frame)) = frames.next_frame() {
        let step = c.relay().from_server(frame);
        match step {
            ServerStep::ToAgent(b, ended) => {
                c.to_agent(&b);
                if let Some(e) = ended {
                    mcp_call::ended(c, &e, false);
                }
            }
            ServerStep::ToServer(b) => {
                c.to_server(&b);
            }
            ServerStep::Dropped(why) => {
                tracing::info!(server = %c.server.name, %why, "mcp: server message not relayed");
            }
        }
    }
}

/// Answers calls the server sits on past `timeout`, and cancels them.
fn expire_loop(c: &Conversation<'_>) {
    while !c.stop.load(Ordering::Acquire) {
        std::thread::sleep(TICK);
        let late = c.relay().expire(Instant::now(), c.server.call_timeout);
        for e in late {
            c.to_agent(&e.to_agent);
            c.to_server(&e.to_server);
            let ended = crate::mcp::Ended {
                call: e.call,
                tool: e.tool,
                failed: true,
                since: Instant::now() - c.server.call_timeout,
            };
            mcp_call::ended(c, &ended, true);
        }
    }
}

/// A descriptor read with a timeout, so a reader notices the stop flag
/// (the agent's side of a pipe may stay open after the server is gone).
struct Polled<'a> {
    file: File,
    stop: &'a AtomicBool,
}

impl Read for Polled<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.stop.load(Ordering::Acquire) {
                return Ok(0);
            }
            let mut fds = [libc::pollfd {
                fd: self.file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            let ms = i32::try_from(TICK.as_millis()).unwrap_or(200);
            if crate::sys::fd::poll(&mut fds, ms).map_err(std::io::Error::from)? > 0 {
                return self.file.read(buf);
            }
        }
    }
}
