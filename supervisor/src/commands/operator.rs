//! Operator commands over the daemon's control socket: `cordon ps`,
//! `cordon kill SESSION`, `cordon start NAME`, `cordon stop NAME`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use cordon::daemon::control::{self, AgentStatus, Request, Response};

/// Options every operator command takes.
#[derive(clap::Args)]
pub struct Common {
    /// The daemon's control socket.
    #[arg(long, default_value = cordon::daemon::DEFAULT_SOCKET, global = true)]
    socket: PathBuf,
    /// Print the daemon's answer as JSON.
    #[arg(long, global = true)]
    json: bool,
}

pub fn operator(common: &Common, req: &Request) -> ExitCode {
    let response = match control::request(&common.socket, req) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cordon: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A closed stdout (`cordon ps | head`) is not an error worth a panic.
    let mut out = std::io::stdout().lock();
    let _ = if common.json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&response).unwrap_or_default()
        )
    } else {
        human(&mut out, &response)
    };
    if response.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn human(out: &mut impl Write, r: &Response) -> std::io::Result<()> {
    if let Some(e) = &r.error {
        eprintln!("cordon: {e}");
    }
    if let Some(m) = &r.message {
        writeln!(out, "{m}")?;
    }
    if let Some(agents) = &r.agents {
        write!(out, "{}", table(agents))?;
    }
    Ok(())
}

/// `cordon ps` as a table.
pub fn table(agents: &[AgentStatus]) -> String {
    let header = [
        "AGENT",
        "STATE",
        "SESSION",
        "PID",
        "UID",
        "UPTIME",
        "ALLOWED",
        "DENIED",
        "PENDING",
        "RESTARTS",
        "LAST EXIT",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for a in agents {
        let dash = || "-".to_string();
        let mut state = a.state.clone();
        if let Some(s) = a.next_start_secs {
            state = format!("{state} ({s:.0}s)");
        }
        rows.push(vec![
            a.name.clone(),
            state,
            a.session.clone().unwrap_or_else(dash),
            a.pid.map_or_else(dash, |p| p.to_string()),
            a.uid.map_or_else(dash, |u| u.to_string()),
            a.uptime_secs.map_or_else(dash, |s| {
                humantime::format_duration(std::time::Duration::from_secs(s)).to_string()
            }),
            a.calls_allowed.map_or_else(dash, |n| n.to_string()),
            a.calls_denied.map_or_else(dash, |n| n.to_string()),
            a.pending_approvals.map_or_else(dash, |n| n.to_string()),
            a.restarts.to_string(),
            a.gave_up
                .clone()
                .or_else(|| a.last_exit.clone())
                .unwrap_or_else(dash),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
