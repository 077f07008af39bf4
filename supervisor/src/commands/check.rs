//! `cordon check FILE...`

use std::path::PathBuf;
use std::process::ExitCode;

pub fn check(files: &[PathBuf]) -> ExitCode {
    let mut ok = true;
    for file in files {
        match cordon::profile::load(file) {
            Ok(p) => println!("{}: ok (profile `{}`)", file.display(), p.name),
            Err(e) => {
                ok = false;
                eprintln!("{e}");
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
