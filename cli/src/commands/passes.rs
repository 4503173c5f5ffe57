//! `clio passes`: the registered passes, read from their declarations.

use clap::Args;
use clio::Error;

/// Arguments of `clio passes`.
#[derive(Args, Debug)]
pub struct PassesArgs {
    /// Show only this pass.
    pub name: Option<String>,
}

/// Runs `clio passes`.
pub fn run(a: PassesArgs) -> Result<(), Error> {
    let reg = clio_passes::registry();
    let mut found = false;
    for info in reg.infos() {
        if a.name.as_deref().is_some_and(|n| n != info.name) {
            continue;
        }
        found = true;
        println!("{}  -  {}", info.name, info.summary);
        for o in info.options {
            let default = o.default.map(|d| format!(" (default: {d})")).unwrap_or_else(|| " (required)".into());
            println!("    {}=<{}>{}  {}", o.name, o.kind.describe(), default, o.help);
        }
        for s in info.statistics {
            println!("    statistic {}: {}", s.name, s.help);
        }
    }
    if !found {
        if let Some(n) = a.name {
            return Err(Error::Format(format!("unknown pass `{n}`")));
        }
    }
    Ok(())
}
