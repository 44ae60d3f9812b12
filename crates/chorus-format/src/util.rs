use chorus_core::Source;
use serde_json::Value;

/// A string at a JSON pointer.
pub(crate) fn s<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// A number at a JSON pointer, as text.
pub(crate) fn n(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer).filter(|x| x.is_number()).map(ToString::to_string)
}

/// At most `max` characters, with an ellipsis when cut; never splits a character.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The first line of a commit message.
pub(crate) fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// A short commit sha.
pub(crate) fn short_sha(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

pub(crate) fn source_label(source: Source) -> &'static str {
    match source {
        Source::Github => "GitHub",
        Source::Gitlab => "GitLab",
        Source::Slack => "Slack",
        Source::Stripe => "Stripe",
        Source::Jira => "Jira",
        Source::Sentry => "Sentry",
        Source::Circleci => "CircleCI",
        Source::Bitbucket => "Bitbucket",
        Source::Gitea => "Gitea",
        Source::Docker => "Docker",
        Source::Standard | Source::Chorus | Source::Generic | Source::None => "Webhook",
    }
}

/// Accent colours.
pub(crate) mod color {
    pub(crate) const GREEN: u32 = 0x2E_A0_43;
    pub(crate) const RED: u32 = 0xD7_3A_49;
    pub(crate) const PURPLE: u32 = 0x82_50_DF;
    pub(crate) const BLUE: u32 = 0x03_66_D6;
    pub(crate) const GREY: u32 = 0x6A_73_7D;
    pub(crate) const YELLOW: u32 = 0xDB_AB_09;
    pub(crate) const ORANGE: u32 = 0xFC_6D_26;
}

/// Colour of a CI result.
pub(crate) fn outcome_color(outcome: &str) -> u32 {
    match outcome {
        "success" | "passed" | "completed" => color::GREEN,
        "failure" | "failed" | "timed_out" | "startup_failure" | "action_required" => color::RED,
        "cancelled" | "canceled" | "skipped" | "stale" | "neutral" => color::GREY,
        _ => color::YELLOW,
    }
}

/// Human duration between two RFC 3339 (or `YYYY-MM-DD HH:MM:SS UTC`) times.
pub(crate) fn duration_between(start: &str, end: &str) -> Option<String> {
    let secs = parse_time(end)? - parse_time(start)?;
    (secs >= 0).then(|| human_secs(secs))
}

pub(crate) fn human_secs(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

/// Seconds since the epoch of `2024-01-02T03:04:05Z`-like text. Only what
/// payloads use: UTC `Z`, numeric offsets, or GitLab's ` UTC` suffix.
#[allow(clippy::many_single_char_names)] // the civil-date formula's conventional names
fn parse_time(text: &str) -> Option<i64> {
    let t = text.trim().replace(" UTC", "Z").replacen(' ', "T", 1);
    let (date, rest) = t.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time: String = rest.chars().take(8).collect();
    let mut tp = time.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, s) = (tp.next()??, tp.next()??, tp.next()??);
    let offset = match rest.get(8..).map(|r| r.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit())) {
        Some(o) if o.len() >= 6 && (o.starts_with('+') || o.starts_with('-')) => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o[1..3].parse::<i64>().ok()? * 3600 + o[4..6].parse::<i64>().ok()? * 60)
        }
        _ => 0,
    };
    // Days from civil date (Howard Hinnant's algorithm).
    let (yy, mm) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + s - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            duration_between("2020-01-01T00:00:00Z", "2020-01-01T00:03:24Z").as_deref(),
            Some("3m 24s")
        );
        assert_eq!(
            duration_between("2023-01-10 13:50:05 UTC", "2023-01-10 13:50:54 UTC").as_deref(),
            Some("49s")
        );
        assert_eq!(
            duration_between("2019-05-15T15:20:31-05:00", "2019-05-15T20:20:31Z").as_deref(),
            Some("0s")
        );
        assert_eq!(duration_between("garbage", "2020-01-01T00:00:00Z"), None);
    }

    #[test]
    fn truncation_is_char_safe() {
        assert_eq!(truncate("héllo wörld", 5), "héll…");
        assert_eq!(truncate("short", 10), "short");
    }
}
