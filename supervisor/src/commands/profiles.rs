//! `cordon profiles`: the profiles `--profile NAME` finds, in search order.

use std::process::ExitCode;

use cordon::profile::find;

pub fn profiles() -> ExitCode {
    let dirs = find::search_dirs();
    let listed = find::list();
    if listed.is_empty() {
        let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        eprintln!(
            "cordon: no profiles in {}; give `--profile` a path to a profile file",
            shown.join(", ")
        );
        return ExitCode::FAILURE;
    }
    let width = listed.iter().map(|l| l.name.len()).max().unwrap_or(0);
    for l in &listed {
        // The description, when the file loads; a broken file is listed
        // too (it is what the name finds), with how to see its errors.
        let about = match cordon::profile::load(&l.path) {
            Ok(p) => p.description.unwrap_or_default(),
            Err(_) => format!("(has errors: cordon check {})", l.path.display()),
        };
        println!("{:width$}  {}  {about}", l.name, l.path.display());
        for hidden in &l.hides {
            println!("{:width$}    hides {}", "", hidden.display());
        }
    }
    ExitCode::SUCCESS
}
