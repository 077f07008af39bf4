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
        // A bare name is looked up as `cordon run --profile` does.
        let file = &match cordon::profile::find(file) {
            Ok(path) => path,
            Err(e) => {
                eprintln!("cordon: {e}");
                ok = false;
                continue;
            }
        };
        match cordon::profile::load(file) {
            Ok(p) => {
                // Checked on this host: no other way to a declared tool.
                let reachable =
                    cordon::sandbox::copies::check(&p, cordon::broker::shim_binary().as_deref());
                if !reachable.is_empty() {
                    ok = false;
                    // A tree of hard links would be hundreds of lines:
                    // the first few, then how many more.
                    const SHOWN: usize = 5;
                    for r in reachable.iter().take(SHOWN) {
                        eprintln!("{r}");
                    }
                    if reachable.len() > SHOWN {
                        eprintln!(
                            "{}: ... and {} more such paths",
                            file.display(),
                            reachable.len() - SHOWN
                        );
                    }
                    continue;
                }
                let wider = parent
                    .as_ref()
                    .map(|parent| cordon::profile::widenings(&p, parent, None))
                    .unwrap_or_default();
                // Honest about raw delivery: not an error, but said.
                for risk in cordon::profile::raw_risks(&p) {
                    eprintln!("{risk}");
                }
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
