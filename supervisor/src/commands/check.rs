//! `cordon check [--within PARENT] FILE...`

use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn check(files: &[PathBuf], within: Option<&Path>) -> ExitCode {
    let parent = match within.map(cordon::profile::load) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            eprintln!("{e}");
            eprintln!("cordon: the parent profile has errors; nothing was checked against it");
            return ExitCode::FAILURE;
        }
    };
    let mut ok = true;
    for file in files {
        match cordon::profile::load(file) {
            Ok(p) => {
                let wider = parent
                    .as_ref()
                    .map(|parent| cordon::profile::widenings(&p, parent, None))
                    .unwrap_or_default();
                if wider.is_empty() {
                    println!("{}: ok (profile `{}`)", file.display(), p.name);
                } else {
                    ok = false;
                    for w in wider {
                        eprintln!("{w}");
                    }
                    eprintln!(
                        "{}: grants more than its parent `{}`; a sub-agent may only get narrower",
                        file.display(),
                        within
                            .map(Path::display)
                            .map(|d| d.to_string())
                            .unwrap_or_default()
                    );
                }
            }
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
