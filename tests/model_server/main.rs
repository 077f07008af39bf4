//! cordon-model-server: a scripted stand-in for the Anthropic, OpenAI and
//! Gemini model APIs, so the real agent CLIs (Claude Code, Codex, Gemini
//! CLI) can run a whole session against it with a fake key.
//!
//! ```text
//! cordon-model-server --script SCENARIO.json --log REQUESTS.jsonl
//!                     [--port N] [--port-file FILE] [--idle-exit SECS]
//!                     [--tls-ca FILE]
//! ```
//!
//! It listens on 127.0.0.1 (port N, default one the kernel picks), prints
//! `listening 127.0.0.1:PORT` on stdout (and writes PORT to --port-file),
//! and answers every main-loop request (one that declares tools) with the
//! scenario's next step (see `script.rs`), side requests (titles, summaries,
//! next-speaker checks) with a short text. Every request is appended to the
//! log as one JSON object per line, body included, so a test can check what
//! the agent sent back to the model. It exits by itself after --idle-exit
//! seconds without a request (default 600). With --tls-ca it speaks HTTPS
//! (see `tls.rs`) and writes the root that signed its certificate to FILE.
//! Each record also holds the credential headers the request carried, so a
//! test can check which key reached the model (the value, never cordon's
//! placeholder).
// A test tool: a panic is a bug in the harness, and raw I/O errors are
// printed and end the one connection.
#![allow(clippy::expect_used)]

mod anthropic;
mod gemini;
mod http;
mod openai;
mod script;
mod tls;

use http::{Reply, Request};
use script::{Action, Scenario};
use serde_json::{json, Value};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Server {
    scenario: Scenario,
    log: Mutex<File>,
    seq: AtomicU64,
    last: Mutex<Instant>,
}

struct Args {
    script: String,
    log: String,
    port: u16,
    port_file: Option<String>,
    idle_exit: u64,
    tls_ca: Option<String>,
}

const USAGE: &str = "usage: cordon-model-server --script SCENARIO.json --log REQUESTS.jsonl [--port N] [--port-file FILE] [--idle-exit SECS] [--tls-ca FILE]";

fn parse_args() -> Result<Args, String> {
    let mut a = std::env::args().skip(1);
    let (mut script, mut log, mut port, mut port_file, mut idle_exit) = (None, None, 0, None, 600);
    let mut tls_ca = None;
    while let Some(flag) = a.next() {
        let mut value = || a.next().ok_or(format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--script" => script = Some(value()?),
            "--log" => log = Some(value()?),
            "--port-file" => port_file = Some(value()?),
            "--tls-ca" => tls_ca = Some(value()?),
            "--port" => {
                let v = value()?;
                port = v.parse().map_err(|_| format!("--port {v}: not a port"))?;
            }
            "--idle-exit" => {
                let v = value()?;
                idle_exit = v
                    .parse()
                    .map_err(|_| format!("--idle-exit {v}: not seconds"))?;
            }
            _ => return Err(format!("unknown argument {flag:?}\n{USAGE}")),
        }
    }
    Ok(Args {
        script: script.ok_or(USAGE)?,
        log: log.ok_or(USAGE)?,
        port,
        port_file,
        idle_exit,
        tls_ca,
    })
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cordon-model-server: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let text =
        std::fs::read_to_string(&args.script).map_err(|e| format!("{}: {e}", args.script))?;
    let scenario = Scenario::parse(&text).map_err(|e| format!("{}: {e}", args.script))?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.log)
        .map_err(|e| format!("{}: {e}", args.log))?;
    let tls = args.tls_ca.as_deref().map(tls::server_config).transpose()?;
    let listener = TcpListener::bind(("127.0.0.1", args.port))
        .map_err(|e| format!("bind 127.0.0.1:{}: {e}", args.port))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    if let Some(f) = &args.port_file {
        std::fs::write(f, format!("{port}\n")).map_err(|e| format!("{f}: {e}"))?;
    }
    println!("listening 127.0.0.1:{port}");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let server = Arc::new(Server {
        scenario,
        log: Mutex::new(log),
        seq: AtomicU64::new(0),
        last: Mutex::new(Instant::now()),
    });
    let idle = Duration::from_secs(args.idle_exit);
    {
        let server = Arc::clone(&server);
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_secs(1));
            let last = *server.last.lock().expect("idle clock lock");
            if last.elapsed() >= idle {
                eprintln!("cordon-model-server: no request for {idle:?}, exiting");
                std::process::exit(0);
            }
        });
    }
    for conn in listener.incoming() {
        let Ok(stream) = conn else { continue };
        let server = Arc::clone(&server);
        let tls = tls.clone();
        std::thread::spawn(move || {
            let served = stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .and_then(|()| match tls {
                    None => serve(&server, &mut &stream),
                    Some(config) => {
                        let conn =
                            rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
                        let mut s = rustls::StreamOwned::new(conn, &stream);
                        serve(&server, &mut s)?;
                        s.conn.send_close_notify();
                        s.flush()
                    }
                });
            if let Err(e) = served {
                eprintln!("cordon-model-server: connection: {e}");
            }
        });
    }
    Ok(())
}

fn serve(server: &Server, stream: &mut (impl Read + Write)) -> std::io::Result<()> {
    let Some(req) = http::read_request(stream)? else {
        return Ok(());
    };
    *server.last.lock().expect("idle clock lock") = Instant::now();
    let seq = server.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let body: Value = serde_json::from_slice(&req.body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&req.body).into_owned()));
    let (api, kind, step, action, reply) = route(server, &req, &body, seq);
    let record = json!({
        "seq": seq, "method": req.method, "target": req.target, "api": api,
        "kind": kind, "step": step, "action": action.map(|a| format!("{a:?}")),
        "user_agent": req.header("user-agent"), "credentials": credentials(&req),
        "body": body,
    });
    {
        let mut log = server.log.lock().expect("log lock");
        writeln!(log, "{record}")?;
        log.flush()?;
    }
    http::write_reply(stream, &reply)
}

/// The headers that carry the three APIs' keys, as received.
fn credentials(req: &Request) -> Value {
    let mut found = serde_json::Map::new();
    for name in ["authorization", "x-api-key", "x-goog-api-key"] {
        if let Some(v) = req.header(name) {
            found.insert(name.into(), Value::String(v.into()));
        }
    }
    Value::Object(found)
}

type Routed = (
    &'static str,
    &'static str,
    Option<usize>,
    Option<Action>,
    Reply,
);

fn route(server: &Server, req: &Request, body: &Value, seq: u64) -> Routed {
    let path = req.path();
    let post = req.method == "POST";
    if req.method == "GET" && path.ends_with("/models") {
        let models = json!({"object": "list", "has_more": false, "models": [],
            "data": [{"id": "scripted", "object": "model", "type": "model",
                      "display_name": "scripted", "created_at": "2025-01-01T00:00:00Z"}]});
        return ("models", "other", None, None, Reply::Json(200, models));
    }
    if post && path.ends_with("/messages/count_tokens") {
        let r = Reply::Json(200, json!({"input_tokens": 10}));
        return ("anthropic", "other", None, None, r);
    }
    if post && path.ends_with(":countTokens") {
        return (
            "gemini",
            "other",
            None,
            None,
            Reply::Json(200, json!({"totalTokens": 10})),
        );
    }
    if post && path.ends_with("/messages") {
        let tools = anthropic::tools(body);
        let (kind, step, action) = decide(server, &tools, anthropic::calls_made(body), None);
        let reply = anthropic::reply(body, &action, seq);
        return ("anthropic", kind, step, Some(action), reply);
    }
    if post && path.ends_with("/responses") {
        let tools = openai::tools(body);
        let (kind, step, action) = decide(server, &tools, openai::calls_made(body), None);
        let reply = openai::reply(body, &action, seq);
        return ("openai", kind, step, Some(action), reply);
    }
    let stream = path.ends_with(":streamGenerateContent");
    if post && (stream || path.ends_with(":generateContent")) {
        let tools = gemini::tools(body);
        let side = gemini::response_schema(body).map(|s| gemini::fill(s, "").to_string());
        let (kind, step, action) = decide(server, &tools, gemini::calls_made(body), side);
        let reply = gemini::reply(&action, stream);
        return ("gemini", kind, step, Some(action), reply);
    }
    let r = Reply::Json(
        404,
        json!({"error": {"message": format!("cordon-model-server: no script for {} {}", req.method, path)}}),
    );
    ("unknown", "other", None, None, r)
}

/// A request that declares tools is the agent's main loop: it gets the
/// scenario's next step. One without tools is a side question.
fn decide(
    server: &Server,
    tools: &[script::ToolDecl],
    calls_made: usize,
    side_answer: Option<String>,
) -> (&'static str, Option<usize>, Action) {
    if tools.is_empty() {
        let text = side_answer.unwrap_or_else(|| "Scripted session".to_string());
        return ("side", None, Action::Text(text));
    }
    let action = server.scenario.next(tools, calls_made);
    ("main", Some(calls_made), action)
}
