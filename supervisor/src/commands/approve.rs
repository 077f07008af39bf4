//! `cordon approvals`, `cordon approve ID`, `cordon deny ID`: the operator
//! side of runtime approval, over the control socket of each running
//! `cordon run` (see docs/profiles.md, "Approval").

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use cordon::approval::client::{self, ClientError};
use cordon::approval::printable;
use cordon::approval::wire::{ControlReply, ControlRequest};

#[derive(clap::Args)]
pub struct SocketArg {
    /// A control socket, or a directory of them. Default: every socket in
    /// /run/cordon/approvals (root; also cordon serve's sessions in
    /// /run/cordon/agents/*), else $XDG_RUNTIME_DIR/cordon/approvals, else
    /// /tmp/cordon-<uid>/approvals. A directory is searched one level deep.
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// One JSON object per pending request, one per line.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct ApproveArgs {
    /// The request id, as `cordon approvals` shows it.
    id: String,
    #[command(flatten)]
    socket: SocketArg,
    /// Also approve later calls the same rule of the same tool matches,
    /// for the rest of the session (at most --ttl, default 1h).
    #[arg(long)]
    for_session: bool,
    /// Approve this many calls with the same argv (this one included).
    #[arg(long, value_name = "N")]
    count: Option<u32>,
    /// How long the grant lasts (e.g. "10m"; at most 24h).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    ttl: Option<Duration>,
}

#[derive(clap::Args)]
pub struct DenyArgs {
    /// The request id, as `cordon approvals` shows it.
    id: String,
    #[command(flatten)]
    socket: SocketArg,
    /// Told to the agent and recorded.
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
}

fn sockets(arg: &SocketArg) -> Result<Vec<PathBuf>, ExitCode> {
    client::sockets(arg.socket.as_deref()).map_err(|e| {
        eprintln!("cordon: {e}");
        ExitCode::from(1)
    })
}

/// `cordon approvals [--json]`
pub fn list(args: &ListArgs) -> ExitCode {
    let socks = match sockets(&args.socket) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut pending = Vec::new();
    let mut failed = false;
    for sock in &socks {
        match client::call(sock, &ControlRequest::List) {
            Ok(ControlReply {
                ok: true,
                pending: p,
                ..
            }) => pending.extend(p),
            Ok(r) => {
                failed = true;
                eprintln!(
                    "cordon: {}: {}",
                    sock.display(),
                    r.error.unwrap_or_default()
                );
            }
            // A socket left by a cordon killed with -9 is nobody's.
            Err(ClientError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::ConnectionRefused => {}
            Err(e) => {
                failed = true;
                eprintln!("cordon: {e}");
            }
        }
    }
    if args.json {
        for p in &pending {
            if let Ok(line) = serde_json::to_string(p) {
                println!("{line}");
            }
        }
    } else if pending.is_empty() {
        println!("no pending approval requests");
    } else {
        println!(
            "{:<12} {:>7}  {:<40}  {:<24}  INTENT",
            "ID", "EXPIRES", "CALL", "SECRETS"
        );
        for p in &pending {
            let call = std::iter::once(p.tool.as_str())
                .chain(p.argv.iter().map(String::as_str))
                .map(printable)
                .collect::<Vec<_>>()
                .join(" ");
            println!(
                "{:<12} {:>6}s  {:<40}  {:<24}  {}",
                printable(&p.id),
                p.expires_in_s,
                call,
                printable(&p.secrets.join(",")),
                printable(p.intent.as_deref().unwrap_or("-")),
            );
            println!(
                "{:<12}          cwd {}  rule {}",
                "",
                printable(&p.cwd),
                printable(&p.rule)
            );
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Sends an answer to whichever socket holds request `id`.
fn answer(socket: &SocketArg, id: &str, request: &ControlRequest, verb: &str) -> ExitCode {
    let socks = match sockets(socket) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut last = None;
    for sock in &socks {
        match client::call(sock, request) {
            Ok(ControlReply {
                ok: true, granted, ..
            }) => {
                match granted {
                    Some(g) => println!("{verb} {id}: {g}"),
                    None => println!("{verb} {id}"),
                }
                return ExitCode::SUCCESS;
            }
            Ok(r) => last = r.error,
            Err(ClientError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::ConnectionRefused => {}
            Err(e) => last = Some(e.to_string()),
        }
    }
    eprintln!(
        "cordon: {}",
        last.unwrap_or_else(|| format!("no running cordon holds request `{}`", printable(id)))
    );
    ExitCode::from(1)
}

/// `cordon approve ID [--for-session] [--count N] [--ttl D]`
pub fn approve(args: &ApproveArgs) -> ExitCode {
    let request = ControlRequest::Approve {
        id: args.id.clone(),
        for_session: args.for_session,
        count: args.count,
        ttl_ms: args
            .ttl
            .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
    };
    answer(&args.socket, &args.id, &request, "approved")
}

/// `cordon deny ID [--reason TEXT]`
pub fn deny(args: &DenyArgs) -> ExitCode {
    let request = ControlRequest::Deny {
        id: args.id.clone(),
        reason: args.reason.clone(),
    };
    answer(&args.socket, &args.id, &request, "denied")
}
