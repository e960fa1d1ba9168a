//! The sections of a harness-less bench, and which of them the command line asks for.

use crate::table::Outcome;

/// A section of a bench: its name on the command line, and what it measures.
#[derive(Debug, Clone, Copy)]
pub struct Section {
    /// The name that asks for it: `cargo bench ... --bench report -- <name>`.
    pub name: &'static str,
    /// Measures, printing its progress on stderr; its rows.
    pub run: fn() -> Outcome,
}

impl Section {
    /// The section `name`, measured by `run`.
    pub const fn new(name: &'static str, run: fn() -> Outcome) -> Self {
        Self { name, run }
    }
}

/// Whether the command line asks for `section`: it does when it names no section at all.
pub fn wanted(section: &str) -> bool {
    let named: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    named.is_empty() || named.iter().any(|name| name == section)
}

/// Runs, in the order given, each of `sections` the command line asks for; their rows.
pub fn run_wanted(sections: &[Section]) -> Outcome {
    let mut outcome = Outcome::default();
    for section in sections {
        if wanted(section.name) {
            outcome.append((section.run)());
        }
    }
    outcome
}
