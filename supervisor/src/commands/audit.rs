//! `cordon audit verify FILE [--head HASH]`

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain of an audit log (exit 0 ok, 1 broken, 2 unreadable).
    Verify {
        /// The audit log (JSONL).
        file: PathBuf,
        /// The expected hash of the last line, as cordon logged it at
        /// session end: the only way to detect an edit of the last record
        /// or records cut off the end.
        #[arg(long, value_name = "HASH")]
        head: Option<String>,
    },
}

pub fn audit(command: AuditCommand) -> ExitCode {
    match command {
        AuditCommand::Verify { file, head } => verify(&file, head.as_deref()),
    }
}

fn verify(file: &Path, head: Option<&str>) -> ExitCode {
    match cordon::audit::verify(file, head) {
        Ok(s) => {
            println!(
                "{}: ok, {} records, head {}",
                file.display(),
                s.records,
                s.head
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}
