//! cordon-shim: placeholder until the broker lands.
//!
//! A brokered tool call must never run without a policy decision, so until
//! the broker exists the shim refuses every call, with the documented
//! refusal status and message.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("cordon: denied: this version of cordon has no broker; no tool call can be approved");
    ExitCode::from(126)
}
