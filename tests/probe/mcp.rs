//! A scripted MCP client, as an agent's would be: starts
//! `cordon-shim mcp SERVER` (found on PATH like any brokered name), sends
//! the lines of a script, and prints what comes back.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};

/// `mcp SERVER SCRIPT`: each line of SCRIPT is sent as is (a JSON-RPC
/// message, or any bytes); after each line that is not a notification
/// (`"notifications/`) one line of answer is awaited and printed as
/// `< LINE`. A line
/// `#big N` sends N bytes of `x` and a newline (an oversized frame) and
/// awaits an answer too. At the end stdin is closed and `exit CODE`
/// printed.
pub(crate) fn session(server: &str, script: &str) -> ExitCode {
    let text = std::fs::read_to_string(script).expect("read the script");
    let mut child = Command::new("cordon-shim")
        .args(["mcp", server])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start cordon-shim mcp");
    let mut input = child.stdin.take().expect("piped stdin");
    let mut output = BufReader::new(child.stdout.take().expect("piped stdout"));
    for line in text.lines() {
        let (bytes, answered) = match line.strip_prefix("#big ") {
            Some(n) => {
                let mut b = vec![b'x'; n.trim().parse().expect("#big N")];
                b.push(b'\n');
                (b, true)
            }
            None => (
                format!("{line}\n").into_bytes(),
                !line.contains("\"notifications/"),
            ),
        };
        if input.write_all(&bytes).is_err() {
            println!("! write failed");
            break;
        }
        if answered {
            let mut got = String::new();
            match output.read_line(&mut got) {
                Ok(0) | Err(_) => {
                    println!("! no answer");
                    break;
                }
                Ok(_) => println!("< {}", got.trim_end()),
            }
        }
    }
    drop(input);
    let status = child.wait().expect("wait for the shim");
    println!("exit {}", status.code().unwrap_or(-1));
    ExitCode::SUCCESS
}

/// For benchmarks only: `mcp-bench N CMD...` starts CMD (an MCP server,
/// or `cordon-shim mcp NAME`), initializes, then makes N sequential
/// `tools/call`s of `list_allowed_directories` and prints the median and
/// p99 round trip in microseconds.
pub(crate) fn bench(n: usize, argv: &[String]) -> ExitCode {
    let Some((prog, rest)) = argv.split_first() else {
        return ExitCode::from(2);
    };
    let mut child = Command::new(prog)
        .args(rest)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    let mut input = child.stdin.take().expect("piped stdin");
    let mut output = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#;
    input
        .write_all(
            format!("{init}\n{{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}}\n")
                .as_bytes(),
        )
        .expect("write");
    output.read_line(&mut line).expect("initialize answer");
    let mut times = Vec::with_capacity(n);
    for i in 1..=n {
        let call = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{i},\"method\":\"tools/call\",\"params\":{{\"name\":\"list_allowed_directories\",\"arguments\":{{}}}}}}\n"
        );
        let start = std::time::Instant::now();
        input.write_all(call.as_bytes()).expect("write");
        line.clear();
        if output.read_line(&mut line).unwrap_or(0) == 0 {
            println!("failed after {i} calls");
            drop(input);
            let _ = child.wait();
            return ExitCode::from(1);
        }
        times.push(start.elapsed().as_micros());
    }
    drop(input);
    let _ = child.wait();
    times.sort_unstable();
    let q = |p: usize| times.get(times.len() * p / 100).copied().unwrap_or(0);
    println!("calls={n} median_us={} p99_us={}", q(50), q(99));
    ExitCode::SUCCESS
}
