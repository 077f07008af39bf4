//! `cordon generate man DIR` / `cordon generate completions DIR` (hidden):
//! man pages and shell completions written from the clap definition
//! itself, so they never drift from the real options. `make install`
//! runs it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use clap_complete::Shell;

#[derive(Subcommand)]
pub enum GenerateCommand {
    /// Write cordon.1 and one cordon-VERB.1 per subcommand into DIR.
    Man { dir: PathBuf },
    /// Write bash, zsh and fish completions into DIR.
    Completions { dir: PathBuf },
}

pub fn generate(what: GenerateCommand, mut cmd: clap::Command) -> ExitCode {
    let result = match what {
        GenerateCommand::Man { dir } => man(&dir, cmd),
        GenerateCommand::Completions { dir } => std::fs::create_dir_all(&dir).and_then(|()| {
            for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
                let path = clap_complete::generate_to(shell, &mut cmd, "cordon", &dir)?;
                println!("{}", path.display());
            }
            Ok(())
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cordon: generate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn man(dir: &Path, cmd: clap::Command) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let cmd = cmd.version(env!("CARGO_PKG_VERSION"));
    let page = |c: &clap::Command, name: &str| -> std::io::Result<()> {
        let path = dir.join(format!("{name}.1"));
        let mut out = Vec::new();
        clap_mangen::Man::new(c.clone().name(name.to_string())).render(&mut out)?;
        std::fs::write(&path, out)?;
        println!("{}", path.display());
        Ok(())
    };
    page(&cmd, "cordon")?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        page(sub, &format!("cordon-{}", sub.get_name()))?;
    }
    Ok(())
}
