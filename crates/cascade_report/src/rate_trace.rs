//! Recorded traffic, read from a CSV file into the points of a `Points` rate profile (what
//! `cascade-cli rate-from-csv` prints and the app's *Replay CSV…* loads).
//!
//! The file has a header row and one row per point: a time in seconds and a rate in requests
//! per second, in the columns named `time_s` and `rate_per_s` unless others are named (or,
//! when neither name is in the header, the first two columns). Times are shifted so that the
//! first row is the start of the run (a trace may carry Unix timestamps). Owns the reading;
//! what a `Points` profile means is `cascade_sim::scenario::RateProfile`'s, and its rules
//! (time order, rates ≥ 0) are checked again when the scenario is validated.

use cascade_sim::scenario::RateProfile;

/// Default name of the time column.
pub const TIME_COLUMN: &str = "time_s";
/// Default name of the rate column.
pub const RATE_COLUMN: &str = "rate_per_s";

/// Why a trace could not be read: a line (1-based, the header is line 1) and what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{message}\n  hint: {hint}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct TraceError {
    /// The line, when the problem has one.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

fn problem(line: Option<usize>, message: impl Into<String>, hint: impl Into<String>) -> TraceError {
    TraceError {
        line,
        message: message.into(),
        hint: hint.into(),
    }
}

/// The columns to read: by name, or `None` for the defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceColumns {
    /// The time column's name (default [`TIME_COLUMN`]).
    pub time: Option<String>,
    /// The rate column's name (default [`RATE_COLUMN`]).
    pub rate: Option<String>,
}

/// The points of a CSV trace, `(time_s, rate_per_s)`, the first at 0 s.
pub fn points_from_csv(text: &str, columns: &TraceColumns) -> Result<Vec<(f64, f64)>, TraceError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| {
            problem(
                Some(1),
                format!("cannot read the header: {e}"),
                header_hint(),
            )
        })?
        .clone();
    let find = |asked: &Option<String>, default: &str| -> Result<Option<usize>, TraceError> {
        match asked {
            Some(name) => header
                .iter()
                .position(|h| h == name)
                .map(Some)
                .ok_or_else(|| {
                    problem(
                        Some(1),
                        format!("no column named {name:?} in the header"),
                        format!(
                            "the header has: {}",
                            header.iter().collect::<Vec<_>>().join(", ")
                        ),
                    )
                }),
            None => Ok(header.iter().position(|h| h == default)),
        }
    };
    let (time, rate) = match (
        find(&columns.time, TIME_COLUMN)?,
        find(&columns.rate, RATE_COLUMN)?,
    ) {
        (Some(t), Some(r)) => (t, r),
        (None, None) if header.len() >= 2 => (0, 1),
        _ => {
            return Err(problem(
                Some(1),
                format!(
                    "the header names one of {TIME_COLUMN} and {RATE_COLUMN} but not the other"
                ),
                header_hint(),
            ));
        }
    };
    let mut points: Vec<(f64, f64)> = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| problem(Some(line), e.to_string(), header_hint()))?;
        if record.iter().all(str::is_empty) {
            continue;
        }
        let number = |col: usize, what: &str| -> Result<f64, TraceError> {
            let cell = record.get(col).unwrap_or("");
            cell.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| {
                    problem(
                        Some(line),
                        format!("the {what} {cell:?} is not a number"),
                        "times are in seconds and rates in requests per second, plain numbers",
                    )
                })
        };
        let (t, r) = (number(time, "time")?, number(rate, "rate")?);
        if r < 0.0 {
            return Err(problem(
                Some(line),
                format!("a rate of {r} requests/s is negative"),
                "rates are requests per second, 0 or more",
            ));
        }
        if let Some(&(previous, _)) = points.last()
            && t < previous
        {
            return Err(problem(
                Some(line),
                format!("the time {t} s comes before the row above's {previous} s"),
                "sort the rows by time",
            ));
        }
        points.push((t, r));
    }
    let Some(&(start, _)) = points.first() else {
        return Err(problem(
            None,
            "the file has no rows below its header",
            header_hint(),
        ));
    };
    for p in &mut points {
        p.0 -= start;
    }
    Ok(points)
}

fn header_hint() -> String {
    format!("a header row, then one row per point: {TIME_COLUMN},{RATE_COLUMN} (e.g. 0,120)")
}

/// The profile of a trace, written as a scenario's `rate:` takes it: `Points([(0, 120), …])`
/// (each number in the shortest form that reads back as the same `f64`).
pub fn points_ron(points: &[(f64, f64)]) -> String {
    let body: Vec<String> = points.iter().map(|(t, r)| format!("({t}, {r})")).collect();
    format!("Points([{}])", body.join(", "))
}

/// The trace as a rate profile.
pub fn profile(points: Vec<(f64, f64)>) -> RateProfile {
    RateProfile::Points(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_is_read_by_column_name_and_starts_at_zero() {
        let text =
            "epoch,rate_per_s,time_s\n9,120,1700000000\n9, 80.5 ,1700000060\n\n9,0,1700000120\n";
        let points = points_from_csv(text, &TraceColumns::default()).unwrap();
        assert_eq!(points, vec![(0.0, 120.0), (60.0, 80.5), (120.0, 0.0)]);
        assert_eq!(
            points_ron(&points),
            "Points([(0, 120), (60, 80.5), (120, 0)])"
        );
        // What it prints reads back as the same profile.
        let text = format!(
            "(version: 1, name: \"t\", duration_s: 1, sources: [(name: \"u\", target: \"s\", rate: {})], services: [(name: \"s\", workers: 1, service_time: Exponential(mean_ms: 1.0))])",
            points_ron(&points)
        );
        let scenario = cascade_sim::scenario::Scenario::from_ron_str(&text, "t.ron").unwrap();
        assert_eq!(scenario.sources[0].rate, profile(points));
        // Without the default names, the first two columns.
        let points = points_from_csv("t,rps\n0,10\n5,20\n", &TraceColumns::default()).unwrap();
        assert_eq!(points, vec![(0.0, 10.0), (5.0, 20.0)]);
        // Named columns.
        let cols = TraceColumns {
            time: Some("t".into()),
            rate: Some("b".into()),
        };
        let points = points_from_csv("a,b,t\n1,2,3\n", &cols).unwrap();
        assert_eq!(points, vec![(0.0, 2.0)]);
    }

    #[test]
    fn bad_traces_say_which_line_and_what_to_do() {
        let err = |text: &str| points_from_csv(text, &TraceColumns::default()).unwrap_err();
        let e = err("time_s,rate_per_s\n0,10\n5,lots\n");
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("\"lots\" is not a number"), "{e}");
        let e = err("time_s,rate_per_s\n10,1\n5,2\n");
        assert_eq!(e.line, Some(3));
        assert!(e.hint.contains("sort the rows"), "{e}");
        let e = err("time_s,rate_per_s\n0,-3\n");
        assert!(e.message.contains("negative"), "{e}");
        let e = err("time_s,rate_per_s\n");
        assert_eq!(e.line, None);
        let e = err("time_s,other\n0,1\n");
        assert!(e.message.contains("but not the other"), "{e}");
        let e = points_from_csv(
            "a,b\n0,1\n",
            &TraceColumns {
                time: Some("when".into()),
                rate: None,
            },
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("line 1: no column named \"when\""),
            "{e}"
        );
        assert!(e.hint.contains("a, b"), "{e}");
    }
}
