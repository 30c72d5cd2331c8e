//! Repetitions summarised: median and min–max per side (raw, netsock,
//! tarpc), the ratios netsock/raw and netsock/tarpc, as a Markdown table or
//! JSON. A side that did not run (tarpc on most workloads) shows "–", or
//! `null` and an empty list in JSON.

/// The `q` quantile (0..=1) of `values`, nearest rank; sorts in place.
pub fn percentile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64 - 1.0) * q).round() as usize;
    values[rank.min(values.len() - 1)]
}

/// One line of the table: a workload on one transport.
pub struct Row {
    pub workload: String,
    pub transport: &'static str,
    /// Unit of the printed values, e.g. `M calls/s`.
    pub unit: &'static str,
    /// Multiply a measured value by this to print it in `unit`.
    pub scale: f64,
    pub higher_is_better: bool,
    pub raw: Vec<f64>,
    pub netsock: Vec<f64>,
    /// The tarpc side: empty on the workloads without one.
    pub tarpc: Vec<f64>,
    /// Why a side has no figures, if it failed.
    pub error: Option<String>,
}

fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)))
}

fn cell(values: &[f64], scale: f64) -> String {
    match median(values) {
        None => "–".into(),
        Some(m) => {
            let (lo, hi) = min_max(values);
            format!(
                "{} ({}–{})",
                fmt(m * scale),
                fmt(lo * scale),
                fmt(hi * scale)
            )
        }
    }
}

/// Three significant digits, at most.
fn fmt(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

impl Row {
    /// netsock/raw of the medians.
    fn ratio(&self) -> Option<f64> {
        Some(median(&self.netsock)? / median(&self.raw)?)
    }

    /// netsock/tarpc of the medians.
    fn ratio_tarpc(&self) -> Option<f64> {
        Some(median(&self.netsock)? / median(&self.tarpc)?)
    }
}

/// The Markdown table. Ratios get three decimals, so that a figure next to
/// a target (say 1.15) is not rounded onto it.
pub fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| workload | transport | unit | raw: median (min–max) | netsock: median (min–max) | tarpc: median (min–max) | netsock/raw | netsock/tarpc | better |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    let three = |r: Option<f64>| r.map_or("–".into(), |r| format!("{r:.3}"));
    for row in rows {
        let better = if row.higher_is_better {
            "higher"
        } else {
            "lower"
        };
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.workload,
            row.transport,
            row.unit,
            cell(&row.raw, row.scale),
            cell(&row.netsock, row.scale),
            cell(&row.tarpc, row.scale),
            three(row.ratio()),
            three(row.ratio_tarpc()),
            better
        );
        if let Some(e) = &row.error {
            s += &format!("| ↳ error: {} | | | | | | | | |\n", e.replace('|', "/"));
        }
    }
    s
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out += "\\\"",
            '\\' => out += "\\\\",
            c if (c as u32) < 0x20 => out += &format!("\\u{:04x}", c as u32),
            c => out.push(c),
        }
    }
    out + "\""
}

fn json_list(values: &[f64], scale: f64) -> String {
    let items: Vec<String> = values.iter().map(|v| format!("{}", v * scale)).collect();
    format!("[{}]", items.join(","))
}

fn json_opt(v: Option<f64>) -> String {
    v.map_or("null".into(), |v| format!("{v}"))
}

/// The rows as a JSON document; `meta` are extra string fields. `ratio` is
/// netsock/raw, `ratio_tarpc` netsock/tarpc, both of the medians.
pub fn json(rows: &[Row], meta: &[(&str, String)]) -> String {
    let mut s = String::from("{\n");
    for (k, v) in meta {
        s += &format!("  {}: {},\n", json_str(k), json_str(v));
    }
    s += "  \"rows\": [\n";
    for (i, row) in rows.iter().enumerate() {
        s += &format!(
            "    {{\"workload\": {}, \"transport\": {}, \"unit\": {}, \"higher_is_better\": {}, \
             \"raw\": {}, \"netsock\": {}, \"tarpc\": {}, \"raw_median\": {}, \
             \"netsock_median\": {}, \"tarpc_median\": {}, \"ratio\": {}, \"ratio_tarpc\": {}, \
             \"error\": {}}}{}\n",
            json_str(&row.workload),
            json_str(row.transport),
            json_str(row.unit),
            row.higher_is_better,
            json_list(&row.raw, row.scale),
            json_list(&row.netsock, row.scale),
            json_list(&row.tarpc, row.scale),
            json_opt(median(&row.raw).map(|m| m * row.scale)),
            json_opt(median(&row.netsock).map(|m| m * row.scale)),
            json_opt(median(&row.tarpc).map(|m| m * row.scale)),
            json_opt(row.ratio()),
            json_opt(row.ratio_tarpc()),
            row.error.as_deref().map_or("null".into(), json_str),
            if i + 1 < rows.len() { "," } else { "" }
        );
    }
    s + "  ]\n}\n"
}
