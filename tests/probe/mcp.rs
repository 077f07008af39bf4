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
