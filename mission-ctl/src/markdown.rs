//! Markdown (GitHub-flavoured) tables, padded so they also read well as plain text.

use std::io::{self, Write};

/// How a column's cells are aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

/// A cell's text made safe inside a table: no line breaks, pipes escaped, at most 120
/// characters.
pub(crate) fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in crate::clean(text).chars().enumerate() {
        if i == 119 {
            out.push('…');
            break;
        }
        match c {
            '|' => out.push_str("\\|"),
            c => out.push(c),
        }
    }
    out
}

/// Writes a table: a header row, the alignment row, then `rows` (cells escaped here).
pub(crate) fn table(
    out: &mut dyn Write,
    header: &[&str],
    align: &[Align],
    rows: &[Vec<String>],
) -> io::Result<()> {
    let header: Vec<String> = header.iter().map(|h| cell(h)).collect();
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|c| cell(c)).collect()).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count().max(3)).collect();
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let right = |i: usize| align.get(i) == Some(&Align::Right);
    let line = |out: &mut dyn Write, cells: &[String]| -> io::Result<()> {
        let parts: Vec<String> = (0..widths.len())
            .map(|i| {
                let c = cells.get(i).map_or("", String::as_str);
                let w = widths[i];
                if right(i) { format!("{c:>w$}") } else { format!("{c:<w$}") }
            })
            .collect();
        writeln!(out, "| {} |", parts.join(" | "))
    };
    line(out, &header)?;
    let rule: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(i, w)| if right(i) { format!("{}:", "-".repeat(w - 1)) } else { "-".repeat(*w) })
        .collect();
    writeln!(out, "| {} |", rule.join(" | "))?;
    for row in &rows {
        line(out, row)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_break_the_table() {
        let mut out = Vec::new();
        let rows = vec![vec!["a|b\nc".to_owned(), "12".to_owned()]];
        table(&mut out, &["text", "n"], &[Align::Left, Align::Right], &rows).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "| text    |   n |\n| ------- | --: |\n| a\\|b\\nc |  12 |\n"
        );
    }
}
