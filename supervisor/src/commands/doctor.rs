//! `cordon doctor`: what this host can enforce.

use std::process::ExitCode;

pub fn doctor() -> ExitCode {
    ExitCode::SUCCESS
}
