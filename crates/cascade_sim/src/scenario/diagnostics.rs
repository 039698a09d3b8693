//! Scenario errors as users read them: `file:line:col: message`, then `hint: …`.
//!
//! Owns turning RON syntax errors and semantic [`Diagnostic`]s into located messages, and the
//! "did you mean" suggestion. Does not decide what is valid (`validate.rs` does).

use std::fmt;

use super::spans::SpanIndex;

/// One semantic problem in a scenario, found by `validate`.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// Where in the document, as a field path such as `services[1].calls[0].to`.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when we can tell.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic without a hint.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            path: path.into(),
            message: compact_numbers(&message.into()),
            hint: None,
        }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// One located problem.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// 1-based line, 0 when the problem has no place in the text (e.g. the file is missing).
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// Field path, when known.
    pub path: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

/// Every problem found in one scenario text.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub struct ScenarioError {
    /// The file (or `<input>`) the problems are in.
    pub origin: String,
    /// The problems, in document order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if p.line == 0 {
                write!(f, "{}: {}", self.origin, p.message)?;
            } else {
                write!(f, "{}:{}:{}: {}", self.origin, p.line, p.col, p.message)?;
            }
            if let Some(hint) = &p.hint {
                write!(f, "\n  hint: {hint}")?;
            }
        }
        Ok(())
    }
}

impl ScenarioError {
    /// The file could not be read.
    pub fn io(origin: &str, err: &std::io::Error) -> Self {
        let hint = match err.kind() {
            std::io::ErrorKind::NotFound => {
                Some("check the path; scenario files end in .ron".to_owned())
            }
            std::io::ErrorKind::InvalidData => {
                Some("scenario files are UTF-8 text; save it again as UTF-8".to_owned())
            }
            std::io::ErrorKind::IsADirectory => {
                Some("give the path of a .ron file in it".to_owned())
            }
            _ => None,
        };
        ScenarioError {
            origin: origin.to_owned(),
            problems: vec![Problem {
                line: 0,
                col: 0,
                path: None,
                message: format!("cannot read file: {err}"),
                hint,
            }],
        }
    }

    /// A RON syntax or shape error.
    pub fn from_ron(origin: &str, text: &str, err: &ron::error::SpannedError) -> Self {
        let (message, hint) = describe_ron_error(&err.code, text);
        ScenarioError {
            origin: origin.to_owned(),
            problems: vec![Problem {
                line: err.span.start.line,
                col: err.span.start.col,
                path: None,
                message,
                hint,
            }],
        }
    }

    /// Semantic problems, located through the text's span index.
    pub fn from_diagnostics(origin: &str, text: &str, diagnostics: Vec<Diagnostic>) -> Self {
        let index = SpanIndex::build(text);
        let mut problems: Vec<Problem> = diagnostics
            .into_iter()
            .map(|d| {
                let (line, col) = index.locate(&d.path);
                Problem {
                    line,
                    col,
                    path: Some(d.path),
                    message: d.message,
                    hint: d.hint,
                }
            })
            .collect();
        problems.sort_by_key(|p| (p.line, p.col));
        ScenarioError {
            origin: origin.to_owned(),
            problems,
        }
    }
}

fn describe_ron_error(code: &ron::Error, text: &str) -> (String, Option<String>) {
    use ron::Error as E;
    let _ = text;
    match code {
        E::NoSuchStructField { expected, found, outer } => (
            format!("unknown field `{found}`{}", in_outer(outer)),
            Some(suggest_or_list(found, expected)),
        ),
        E::NoSuchEnumVariant { expected, found, outer } => (
            format!("unknown variant `{found}`{}", in_outer(outer)),
            Some(suggest_or_list(found, expected)),
        ),
        E::MissingStructField { field, outer } => (
            format!("missing field `{field}`{}", in_outer(outer)),
            Some(format!("add `{field}: …` (see docs/scenario-format.md)")),
        ),
        E::DuplicateStructField { field, outer } => (
            format!("field `{field}` appears twice{}", in_outer(outer)),
            Some("keep one of them".to_owned()),
        ),
        E::ExpectedFloat | E::ExpectedInteger => (
            lowercase_first(&code.to_string()),
            Some("numbers are written like 800 or 0.5, without units or quotes (counts are whole numbers)".to_owned()),
        ),
        E::ExpectedString => (lowercase_first(&code.to_string()), Some("names are written in double quotes, e.g. \"db\"".to_owned())),
        E::ExpectedComma => (
            lowercase_first(&code.to_string()),
            Some("separate fields and list items with `,` (a count written as 4.0 also ends up here: write 4)".to_owned()),
        ),
        E::Eof => (lowercase_first(&code.to_string()), Some("a `(`, `[` or `{` is not closed".to_owned())),
        E::TrailingCharacters => (
            lowercase_first(&code.to_string()),
            Some("the scenario is one `( … )`; remove what follows its closing `)`".to_owned()),
        ),
        _ => (lowercase_first(&code.to_string()), None),
    }
}

/// RON's own messages start with a capital ("Expected comma"); ours do not.
fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn in_outer(outer: &Option<String>) -> String {
    let Some(o) = outer else { return String::new() };
    let plain = match o.as_str() {
        "Scenario" => "the scenario",
        "SourceSpec" => "a source",
        "ServiceSpec" => "a service",
        "CallSpec" => "a call",
        "QueueSpec" => "a queue",
        "RetryPolicy" => "a retry policy",
        "RetryBudgetSpec" => "a retry budget",
        "FaultSpec" => "a fault",
        "VerdictSettings" => "the verdict settings",
        "Expectation" => "the expectation",
        "Position" => "a position",
        "ServiceTime" => "a service time",
        "RateProfile" => "a rate profile",
        "Backoff" => "a backoff",
        "Jitter" => "a jitter",
        "FaultKind" => "a fault",
        "NodeKind" => "a node kind",
        "LoadBalancer" => "a load balancer",
        "QueueDiscipline" => "a queue discipline",
        "InstanceSelector" => "an instance selector",
        "KillMode" => "a kill mode",
        "VerdictKind" => "a verdict",
        other => return format!(" in `{other}`"),
    };
    format!(" in {plain}")
}

fn suggest_or_list(found: &str, expected: &[&str]) -> String {
    match closest(found, expected.iter().copied()) {
        Some(best) => format!("did you mean `{best}`?"),
        None => format!("expected one of: {}", expected.join(", ")),
    }
}

/// The candidate most similar to `name`, if any is similar enough to be a likely typo.
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_lowercase();
    candidates
        .map(|c| (strsim::jaro_winkler(&lower, &c.to_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_typos_and_ignores_strangers() {
        let names = ["api", "db", "cache", "payments"];
        assert_eq!(closest("dbb", names.iter().copied()), Some("db"));
        assert_eq!(closest("paymnets", names.iter().copied()), Some("payments"));
        assert_eq!(
            closest("zzzzzz", names.iter().copied()),
            None,
            "unrelated names get no suggestion"
        );
    }
}

/// `message` with every number longer than 12 characters written in scientific notation:
/// a value's `Display` spells 1e-300 with 300 zeros and 1e308 with 308 digits.
fn compact_numbers(message: &str) -> String {
    let bytes = message.as_bytes();
    let mut out = String::with_capacity(message.len());
    let mut i = 0;
    while i < bytes.len() {
        let starts = bytes[i].is_ascii_digit()
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'));
        if !starts {
            let ch = message[i..].chars().next().expect("inside the string");
            out.push(ch);
            i += ch.len_utf8();
            continue;
        }
        let from = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let token = &message[from..i];
        match token.parse::<f64>() {
            Ok(v) if token.len() > 12 => out.push_str(&format!("{v:e}")),
            _ => out.push_str(token),
        }
    }
    out
}

#[cfg(test)]
mod compact_tests {
    use super::compact_numbers;

    #[test]
    fn long_numbers_are_written_in_scientific_notation() {
        let tiny = format!("a period of {} s", 1e-300);
        assert_eq!(compact_numbers(&tiny), "a period of 1e-300 s");
        let huge = format!("rate {} requests/s", 1e308);
        assert_eq!(compact_numbers(&huge), "rate 1e308 requests/s");
        assert_eq!(
            compact_numbers("18446744073709551615 keys, 4294967295 instances, 0.000001 s, l2-s10"),
            "1.8446744073709552e19 keys, 4294967295 instances, 0.000001 s, l2-s10"
        );
        assert_eq!(compact_numbers("−1 × 3 → ok"), "−1 × 3 → ok");
    }
}
