//! The benches' output: a markdown table with one row per measure, and notes under it.

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What is measured.
    pub what: String,
    /// The bucket's figure.
    pub bucket: String,
    /// What it is compared with.
    pub reference: String,
    /// The ratio the target is on.
    pub ratio: String,
    /// The target, or "none" for a row given for information.
    pub target: String,
    /// Whether the target is met: see [`verdict`]; empty for information.
    pub met: String,
}

/// What sections return: rows of the table, and lines printed under it.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The rows, in order.
    pub rows: Vec<Row>,
    /// Lines printed after the table, in order.
    pub notes: Vec<String>,
}

impl Outcome {
    /// Adds a row.
    pub fn row(
        &mut self,
        what: &str,
        bucket: String,
        reference: String,
        ratio: String,
        target: &str,
        met: &str,
    ) {
        self.rows.push(Row {
            what: what.to_string(),
            bucket,
            reference,
            ratio,
            target: target.to_string(),
            met: met.to_string(),
        });
    }

    /// Adds a line to print under the table.
    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// Adds `other`'s rows and notes after these.
    pub fn append(&mut self, other: Outcome) {
        self.rows.extend(other.rows);
        self.notes.extend(other.notes);
    }

    /// Prints the table on stdout, then a blank line and the notes.
    pub fn print(&self) {
        println!();
        println!("| measure | actix-leaky-bucket | reference | ratio | target | met |");
        println!("|---|---|---|---|---|---|");
        for row in &self.rows {
            let Row {
                what,
                bucket,
                reference,
                ratio,
                target,
                met,
            } = row;
            println!("| {what} | {bucket} | {reference} | {ratio} | {target} | {met} |");
        }
        println!();
        for note in &self.notes {
            println!("{note}");
        }
    }
}

/// The "met" column: `yes`, or a bold `no`.
pub fn verdict(met: bool) -> &'static str {
    if met {
        "yes"
    } else {
        "**no**"
    }
}
