//! `arrowquant completions SHELL` and `arrowquant man`: generated from the clap
//! definitions in [`crate::args`], so they list exactly the subcommands and flags the
//! binary accepts.

use anyhow::Context;
use clap::CommandFactory;

use crate::args::Cli;
use crate::exit::Outcome;

/// Prints the completion script of `shell` on stdout.
///
/// # Errors
/// A failing stdout.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<Outcome> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "arrowquant", &mut buf);
    write_stdout(&buf)
}

/// Prints the man page of `arrowquant`, then one section per subcommand, as roff.
///
/// # Errors
/// A failing stdout.
pub fn man() -> anyhow::Result<Outcome> {
    let cmd = Cli::command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf).context("rendering the man page")?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("arrowquant-{}", sub.get_name());
        let sub = sub.clone().display_name(name.clone()).bin_name(name).version(env!("CARGO_PKG_VERSION"));
        clap_mangen::Man::new(sub).render(&mut buf).context("rendering the man page")?;
    }
    write_stdout(&buf)
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<Outcome> {
    // A closed pipe (`| head`) ends the program quietly: crate::exit handles it once.
    crate::out::print(std::str::from_utf8(bytes).context("the generated text is not UTF-8")?)?;
    Ok(Outcome::Success)
}
