//! Where each value of a RON document starts, by field path.
//!
//! serde tells us *that* `services[1].calls[0].to` names an unknown service, not *where* it
//! is written. [`SpanIndex`] scans the text once (a tolerant structural scan of RON: comments,
//! strings, raw strings, structs, tuples, lists, maps, `Some(…)`) and records the line and
//! column of every value under the same path syntax that `validate` uses. It never fails: on
//! text it does not understand it records less, and [`SpanIndex::locate`] falls back to the
//! nearest recorded ancestor.

use std::collections::BTreeMap;

/// Line/column (1-based) of every value in a RON text, keyed by field path.
#[derive(Debug, Default)]
pub struct SpanIndex {
    positions: BTreeMap<String, (usize, usize)>,
}

impl SpanIndex {
    /// Scans `text`.
    pub fn build(text: &str) -> SpanIndex {
        let mut scanner = Scanner {
            chars: text.chars().collect(),
            pos: 0,
            line: 1,
            col: 1,
        };
        let mut index = SpanIndex::default();
        scanner.skip_trivia_and_attributes();
        scanner.value(String::new(), &mut index, 0);
        index
    }

    /// Position of the value at `path`, or of its nearest recorded ancestor; `(1, 1)` if none.
    pub fn locate(&self, path: &str) -> (usize, usize) {
        let mut p = path.to_owned();
        loop {
            if let Some(&pos) = self.positions.get(&p) {
                return pos;
            }
            match parent_path(&p) {
                Some(parent) => p = parent,
                None => return (1, 1),
            }
        }
    }

    /// The exact position recorded for `path`, if any.
    pub fn get(&self, path: &str) -> Option<(usize, usize)> {
        self.positions.get(path).copied()
    }
}

fn parent_path(path: &str) -> Option<String> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(path[..cut].to_owned())
}

fn join_field(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

struct Scanner {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    col: usize,
}

const MAX_DEPTH: usize = 128;

impl Scanner {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn skip_trivia(&mut self) {
        loop {
            match (self.peek(), self.peek_at(1)) {
                (Some(c), _) if c.is_whitespace() => {
                    self.bump();
                }
                (Some('/'), Some('/')) => {
                    while let Some(c) = self.bump() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                (Some('/'), Some('*')) => {
                    self.bump();
                    self.bump();
                    let mut depth = 1;
                    while depth > 0 {
                        match (self.bump(), self.peek()) {
                            (None, _) => return,
                            (Some('*'), Some('/')) => {
                                self.bump();
                                depth -= 1;
                            }
                            (Some('/'), Some('*')) => {
                                self.bump();
                                depth += 1;
                            }
                            _ => {}
                        }
                    }
                }
                _ => return,
            }
        }
    }

    fn skip_trivia_and_attributes(&mut self) {
        self.skip_trivia();
        while self.peek() == Some('#') && self.peek_at(1) == Some('!') {
            while let Some(c) = self.bump() {
                if c == ']' {
                    break;
                }
            }
            self.skip_trivia();
        }
    }

    fn ident(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '_' {
                s.push(c);
                self.bump();
            } else {
                break;
            }
        }
        s
    }

    fn string(&mut self) {
        // Opening quote already current.
        self.bump();
        while let Some(c) = self.bump() {
            match c {
                '\\' => {
                    self.bump();
                }
                '"' => return,
                _ => {}
            }
        }
    }

    fn raw_string(&mut self) {
        // At 'r'.
        self.bump();
        let mut hashes = 0;
        while self.peek() == Some('#') {
            hashes += 1;
            self.bump();
        }
        if self.peek() != Some('"') {
            return;
        }
        self.bump();
        'outer: while let Some(c) = self.bump() {
            if c == '"' {
                for i in 0..hashes {
                    if self.peek_at(i) != Some('#') {
                        continue 'outer;
                    }
                }
                for _ in 0..hashes {
                    self.bump();
                }
                return;
            }
        }
    }

    fn scalar(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || matches!(c, '.' | '_' | '+' | '-') {
                self.bump();
            } else {
                break;
            }
        }
    }

    fn value(&mut self, path: String, index: &mut SpanIndex, depth: usize) {
        self.skip_trivia();
        if depth > MAX_DEPTH {
            return;
        }
        index
            .positions
            .entry(path.clone())
            .or_insert((self.line, self.col));
        match self.peek() {
            Some('"') => self.string(),
            Some('\'') => {
                self.bump();
                if self.peek() == Some('\\') {
                    self.bump();
                }
                self.bump();
                if self.peek() == Some('\'') {
                    self.bump();
                }
            }
            Some('r') if matches!(self.peek_at(1), Some('"' | '#')) => self.raw_string(),
            Some('(') => self.paren_contents(&path, index, depth),
            Some('[') => {
                self.bump();
                let mut i = 0;
                loop {
                    self.skip_trivia();
                    match self.peek() {
                        None => return,
                        Some(']') => {
                            self.bump();
                            return;
                        }
                        Some(',') => {
                            self.bump();
                        }
                        _ => {
                            let before = self.pos;
                            self.value(format!("{path}[{i}]"), index, depth + 1);
                            i += 1;
                            if self.pos == before {
                                self.bump();
                            }
                        }
                    }
                }
            }
            Some('{') => {
                self.bump();
                loop {
                    self.skip_trivia();
                    match self.peek() {
                        None => return,
                        Some('}') => {
                            self.bump();
                            return;
                        }
                        Some(',') => {
                            self.bump();
                        }
                        Some('"') => {
                            let start = self.pos + 1;
                            self.string();
                            let key: String = self.chars
                                [start..self.pos.saturating_sub(1).max(start)]
                                .iter()
                                .collect();
                            self.skip_trivia();
                            if self.peek() == Some(':') {
                                self.bump();
                            }
                            self.value(join_field(&path, &key), index, depth + 1);
                        }
                        _ => {
                            let before = self.pos;
                            self.value(format!("{path}.?"), index, depth + 1);
                            if self.pos == before {
                                self.bump();
                            }
                        }
                    }
                }
            }
            Some(c) if c.is_alphabetic() || c == '_' => {
                let word = self.ident();
                self.skip_trivia();
                if self.peek() == Some('(') {
                    if word == "Some" {
                        self.bump();
                        self.value(path.clone(), index, depth + 1);
                        self.skip_trivia();
                        if self.peek() == Some(')') {
                            self.bump();
                        }
                    } else {
                        self.paren_contents(&path, index, depth);
                    }
                }
            }
            Some(_) => self.scalar(),
            None => {}
        }
    }

    /// At `(`: named fields (`a: v, …`) or tuple members (`v, …`, recorded as `path.0`, …).
    fn paren_contents(&mut self, path: &str, index: &mut SpanIndex, depth: usize) {
        self.bump();
        let mut i = 0;
        loop {
            self.skip_trivia();
            match self.peek() {
                None => return,
                Some(')') => {
                    self.bump();
                    return;
                }
                Some(',') => {
                    self.bump();
                }
                Some(c) if c.is_alphabetic() || c == '_' => {
                    let save = (self.pos, self.line, self.col);
                    let word = self.ident();
                    self.skip_trivia();
                    if self.peek() == Some(':') && self.peek_at(1) != Some(':') {
                        self.bump();
                        self.value(join_field(path, &word), index, depth + 1);
                    } else {
                        (self.pos, self.line, self.col) = save;
                        self.value(format!("{path}.{i}"), index, depth + 1);
                        i += 1;
                    }
                }
                _ => {
                    let before = self.pos;
                    self.value(format!("{path}.{i}"), index, depth + 1);
                    i += 1;
                    if self.pos == before {
                        self.bump();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"// a comment
#![enable(implicit_some)]
(
    version: 1,
    name: "x (with parens)",
    sources: [
        (name: "users", target: "api", rate: Constant(800.0)),
    ],
    services: [
        (name: "api", workers: 4, service_time: Exponential(mean_ms: 5.0),
         calls: [(to: "db", timeout_ms: Some(100.0)), /* inline */ (to: "dbb")]),
    ],
    layout: {"api": (x: 1.0, y: 2.0)},
)
"#;

    /// The text at a 1-based line/column.
    fn at(text: &str, (line, col): (usize, usize)) -> String {
        text.lines()
            .nth(line - 1)
            .unwrap()
            .chars()
            .skip(col - 1)
            .collect()
    }

    #[test]
    fn records_nested_fields_and_list_items() {
        let index = SpanIndex::build(TEXT);
        let starts = |path: &str, token: &str| {
            let pos = index
                .get(path)
                .unwrap_or_else(|| panic!("{path} not recorded"));
            assert!(
                at(TEXT, pos).starts_with(token),
                "{path} at {pos:?} should start with {token:?}, got {:?}",
                at(TEXT, pos)
            );
        };
        starts("version", "1,");
        starts("sources[0].target", "\"api\"");
        starts("sources[0].rate", "Constant(");
        starts("sources[0].rate.0", "800.0");
        starts("services[0].service_time.mean_ms", "5.0");
        starts("services[0].calls[1].to", "\"dbb\"");
        starts("services[0].calls[0].timeout_ms", "Some(100.0)");
        starts("layout.api.y", "2.0");
        assert_eq!(
            index.get("version").map(|p| p.0),
            Some(4),
            "lines count from 1, comments included"
        );
    }

    #[test]
    fn unknown_paths_fall_back_to_the_nearest_ancestor() {
        let index = SpanIndex::build(TEXT);
        assert_eq!(
            index.locate("services[0].calls[1].nothing"),
            index.get("services[0].calls[1]").unwrap()
        );
        assert_eq!(index.locate("zzz"), (1, 1).max(index.locate("")));
    }

    #[test]
    fn never_panics_on_garbage() {
        for text in [
            "",
            "(",
            "[[[",
            "\"unterminated",
            "r#\"raw",
            "(a: /* open",
            "{\"k\" 1}",
            ")))",
        ] {
            let _ = SpanIndex::build(text).locate("a.b[3]");
        }
    }
}
