//! Markdown (GitHub-flavoured) tables, padded so they also read well as plain text, and the
//! Markdown the report writes as a print-ready HTML page.

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
    for (i, c) in super::clean(text).chars().enumerate() {
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

/// The print stylesheet of [`to_html`]: readable on screen, A4/Letter on paper, tables kept
/// whole where they fit and their header repeated on each page.
const PRINT_CSS: &str = "\
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: #111827; max-width: 1100px; margin: 24px auto; padding: 0 20px; }
h1 { font-size: 22px; margin: 0 0 8px; } h2 { font-size: 17px; margin: 22px 0 8px; border-bottom: 1px solid #d1d5db; padding-bottom: 4px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d1d5db; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f4f6; } td.num, th.num { text-align: right; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-all; }
ul { padding-left: 20px; }
@page { size: auto; margin: 14mm 12mm; }
@media print {
  body { margin: 0; max-width: none; font-size: 11px; }
  h2 { break-after: avoid; page-break-after: avoid; }
  table { break-inside: auto; } tr { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
  th { background: #eee !important; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
";

/// `text` with `&`, `<`, `>` and `"` escaped for HTML.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// One line of Markdown text as HTML: escaped, with `**strong**` and `` `code` ``.
fn inline(text: &str) -> String {
    let escaped = escape_html(text);
    let mut out = String::with_capacity(escaped.len());
    let mut code = false;
    let mut strong = false;
    let mut rest = escaped.as_str();
    while let Some(c) = rest.chars().next() {
        if c == '`' {
            out.push_str(if code { "</code>" } else { "<code>" });
            code = !code;
            rest = &rest[1..];
        } else if !code && rest.starts_with("**") {
            out.push_str(if strong { "</strong>" } else { "<strong>" });
            strong = !strong;
            rest = &rest[2..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if code {
        out.push_str("</code>");
    }
    if strong {
        out.push_str("</strong>");
    }
    out
}

/// The cells of a table line (`| a | b\\|c |`), unescaped.
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|');
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut out = Vec::new();
    let mut cell = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cell.push('|');
                chars.next();
            }
            '|' => out.push(std::mem::take(&mut cell).trim().to_owned()),
            c => cell.push(c),
        }
    }
    out.push(cell.trim().to_owned());
    out
}

/// The Markdown this module writes (headings, `- ` lists, tables, paragraphs) as a
/// self-contained, print-ready HTML page titled `title`: no script, no other origin, a print
/// stylesheet (save as PDF from a browser).
pub fn to_html(markdown: &str, title: &str) -> String {
    let mut body = String::new();
    let lines: Vec<&str> = markdown.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some(h) = line.strip_prefix("## ") {
            body.push_str(&format!("<h2>{}</h2>\n", inline(h)));
        } else if let Some(h) = line.strip_prefix("# ") {
            body.push_str(&format!("<h1>{}</h1>\n", inline(h)));
        } else if line.starts_with("- ") {
            body.push_str("<ul>\n");
            while i < lines.len() && lines[i].starts_with("- ") {
                body.push_str(&format!("<li>{}</li>\n", inline(&lines[i][2..])));
                i += 1;
            }
            body.push_str("</ul>\n");
            continue;
        } else if line.starts_with('|') {
            let header = cells(line);
            let rule = lines.get(i + 1).map(|l| cells(l)).unwrap_or_default();
            let right: Vec<bool> = rule.iter().map(|r| r.ends_with(':')).collect();
            let class = |c: usize| if right.get(c) == Some(&true) { " class=\"num\"" } else { "" };
            body.push_str("<table>\n<thead><tr>");
            for (c, h) in header.iter().enumerate() {
                body.push_str(&format!("<th{}>{}</th>", class(c), inline(h)));
            }
            body.push_str("</tr></thead>\n<tbody>\n");
            i += 2;
            while i < lines.len() && lines[i].starts_with('|') {
                body.push_str("<tr>");
                for (c, cell) in cells(lines[i]).iter().enumerate() {
                    body.push_str(&format!("<td{}>{}</td>", class(c), inline(cell)));
                }
                body.push_str("</tr>\n");
                i += 1;
            }
            body.push_str("</tbody>\n</table>\n");
            continue;
        } else if !line.trim().is_empty() {
            body.push_str(&format!("<p>{}</p>\n", inline(line)));
        }
        i += 1;
    }
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>\n{PRINT_CSS}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape_html(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_an_escaped_print_ready_page() {
        let mut md = Vec::new();
        md.extend_from_slice(
            b"# Report <1>\n\n- Period: **a** to `b`\n- Tenant: x&y\n\n## Table\n\n",
        );
        let rows = vec![vec!["<script>alert(1)</script>|pipe".to_owned(), "12".to_owned()]];
        table(&mut md, &["text", "n"], &[Align::Left, Align::Right], &rows).expect("write");
        md.extend_from_slice(b"\nNo more.\n");
        let html = to_html(&String::from_utf8(md).expect("utf-8"), "A \"report\"");
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("<title>A &quot;report&quot;</title>"));
        assert!(html.contains("@media print"));
        assert!(html.contains("<h1>Report &lt;1&gt;</h1>"));
        assert!(html.contains("<li>Period: <strong>a</strong> to <code>b</code></li>"));
        assert!(html.contains("<li>Tenant: x&amp;y</li>"));
        assert!(html.contains("<th>text</th><th class=\"num\">n</th>"));
        assert!(html.contains(
            "<td>&lt;script&gt;alert(1)&lt;/script&gt;|pipe</td><td class=\"num\">12</td>"
        ));
        assert!(html.contains("<p>No more.</p>"));
        assert!(!html.contains("<script"));
    }

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
