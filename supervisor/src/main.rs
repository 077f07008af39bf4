//! The `cordon` command line: one small module per verb over the library.

mod commands;

use std::process::ExitCode;

fn main() -> ExitCode {
    commands::main()
}
