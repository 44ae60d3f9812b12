use chorus_core::Message;
use serde_json::{Value, json};
use twilight_model::channel::message::Embed;
use twilight_util::builder::embed::{
    EmbedAuthorBuilder, EmbedBuilder, EmbedFieldBuilder, EmbedFooterBuilder,
};
use twilight_validate::embed::{
    AUTHOR_NAME_LENGTH, DESCRIPTION_LENGTH, EMBED_TOTAL_LENGTH, FIELD_COUNT, FIELD_NAME_LENGTH,
    FIELD_VALUE_LENGTH, FOOTER_TEXT_LENGTH, TITLE_LENGTH,
};
use twilight_validate::message::EMBED_COUNT_LIMIT;

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Discord refuses a whole message for one malformed embed URL.
fn http_url(url: Option<&str>) -> Option<String> {
    let parsed = url::Url::parse(url?).ok()?;
    matches!(parsed.scheme(), "http" | "https").then(|| parsed.to_string())
}

/// Render `message` as an embed within Discord's limits.
pub fn to_embed(message: &Message) -> Embed {
    let title = cut(&message.title, TITLE_LENGTH);
    let mut description = cut(&message.description, DESCRIPTION_LENGTH);
    let footer = message.footer.as_deref().map(|f| cut(f, FOOTER_TEXT_LENGTH));
    let author = message.author.as_deref().filter(|a| !a.is_empty()).map(|a| cut(a, AUTHOR_NAME_LENGTH));
    let mut fields: Vec<(String, String, bool)> = message
        .fields
        .iter()
        .take(FIELD_COUNT)
        .map(|f| {
            // Discord requires both parts of a field to be non-empty.
            let name = if f.name.trim().is_empty() {
                "\u{200b}".to_owned()
            } else {
                cut(&f.name, FIELD_NAME_LENGTH)
            };
            let value =
                if f.value.trim().is_empty() { "—".to_owned() } else { cut(&f.value, FIELD_VALUE_LENGTH) };
            (name, value, f.inline)
        })
        .collect();

    // Over the 6000 total: shrink the description first (the link has the
    // full text), then drop trailing fields.
    let fixed = chars(&title) + footer.as_deref().map_or(0, chars) + author.as_deref().map_or(0, chars);
    let fields_len =
        |fs: &[(String, String, bool)]| fs.iter().map(|(n, v, _)| chars(n) + chars(v)).sum::<usize>();
    let total = fixed + chars(&description) + fields_len(&fields);
    if total > EMBED_TOTAL_LENGTH {
        let room = EMBED_TOTAL_LENGTH.saturating_sub(fixed + fields_len(&fields));
        description = if room >= 100 { cut(&description, room) } else { String::new() };
        while fixed + chars(&description) + fields_len(&fields) > EMBED_TOTAL_LENGTH {
            fields.pop();
        }
    }
    if title.is_empty() && description.is_empty() && fields.is_empty() {
        // Discord refuses an empty embed.
        description = "(empty message)".to_owned();
    }

    let mut builder = EmbedBuilder::new();
    if !title.is_empty() {
        builder = builder.title(title);
    }
    if !description.is_empty() {
        builder = builder.description(description);
    }
    if let Some(url) = http_url(message.url.as_deref()) {
        builder = builder.url(url);
    }
    if let Some(color) = message.color {
        builder = builder.color(color & 0x00FF_FFFF);
    }
    if let Some(name) = author {
        let mut a = EmbedAuthorBuilder::new(name);
        if let Some(url) = http_url(message.author_url.as_deref()) {
            a = a.url(url);
        }
        builder = builder.author(a);
    }
    for (name, value, inline) in fields {
        let f = EmbedFieldBuilder::new(name, value);
        builder = builder.field(if inline { f.inline() } else { f });
    }
    if let Some(text) = footer {
        builder = builder.footer(EmbedFooterBuilder::new(text));
    }
    let embed = builder.build();
    debug_assert!(twilight_validate::embed::embed(&embed).is_ok(), "embed out of Discord's limits");
    embed
}

/// The JSON body of a create-message or execute-webhook request for
/// `message`. `nonce` (at most 25 characters) makes Discord deduplicate
/// channel messages; mentions are disabled so a payload cannot ping anyone.
pub fn message_payload(message: &Message, nonce: Option<&str>) -> Value {
    let mut body = json!({
        "embeds": [to_embed(message)],
        "allowed_mentions": {"parse": []},
    });
    if let Some(rows) = components(message) {
        body["components"] = rows;
    }
    if let Some(n) = nonce {
        body["nonce"] = json!(n);
        body["enforce_nonce"] = json!(true);
    }
    body
}

/// Discord's limits on buttons: five to a row, ids of at most 100
/// characters, labels of at most 80.
const BUTTONS_PER_ROW: usize = 5;

/// The action rows holding `message`'s buttons, if it has any.
pub fn components(message: &Message) -> Option<Value> {
    if message.buttons.is_empty() {
        return None;
    }
    let rows: Vec<Value> = message
        .buttons
        .chunks(BUTTONS_PER_ROW)
        .take(5)
        .map(|row| {
            let buttons: Vec<Value> = row
                .iter()
                .map(|b| {
                    let style = match b.style {
                        chorus_core::ButtonStyle::Primary => 1,
                        chorus_core::ButtonStyle::Secondary => 2,
                        chorus_core::ButtonStyle::Success => 3,
                        chorus_core::ButtonStyle::Danger => 4,
                    };
                    json!({"type": 2, "style": style, "label": cut(&b.label, 80), "custom_id": cut(&b.id, 100)})
                })
                .collect();
            json!({"type": 1, "components": buttons})
        })
        .collect();
    Some(Value::Array(rows))
}

/// Most events one digest lists.
const DIGEST_MAX: usize = 50;
/// A digest line's title is cut to this many characters.
const DIGEST_TITLE: usize = 120;
/// Longer links are left out of a digest line rather than cut.
const DIGEST_URL: usize = 512;

/// A backlog longer than this goes out as digests. Full embeds, ten to a
/// message, clear this many within one of Discord's per-channel windows
/// (5 messages per 5 seconds); past it, detail costs minutes of delay.
pub const DIGEST_AFTER: usize = 5 * EMBED_COUNT_LIMIT;

/// How many of `messages` (oldest first, one destination: everything
/// pending for it, or the first hundred or so) go into one Discord message:
/// their own embeds (up to 10 and 6000 characters in all) while the backlog
/// is at most [`DIGEST_AFTER`]; past that, one digest with a linked line
/// each. Zero only for no messages.
///
/// A channel takes 5 messages per 5 seconds, so a burst of a thousand events
/// would take over 16 minutes one message each; as digests it takes seconds.
pub fn pack_count(messages: &[Message]) -> usize {
    // Buttons belong to a whole message: one that has them goes alone, and
    // a pack ends before it.
    match messages.iter().position(|m| !m.buttons.is_empty()) {
        Some(0) => return 1,
        Some(i) => return pack_count(&messages[..i]),
        None => {}
    }
    if messages.len() > DIGEST_AFTER {
        return digest_fit(messages);
    }
    // A message that follows its subject is edited later, and one about a
    // pull request or incident starts (or goes into) its thread, so each
    // needs a Discord message of its own; a channel far enough behind for
    // a digest is better served by the digest.
    match messages.iter().position(|m| m.subject.is_some() || m.thread.is_some()) {
        Some(0) => 1,
        Some(i) => embeds_fit(&messages[..i]),
        None => embeds_fit(messages),
    }
}

/// The body of one create-message or execute-webhook request carrying every
/// one of `messages`: their embeds if they fit, else one digest.
pub fn packed_payload(messages: &[Message], nonce: Option<&str>) -> Value {
    let embeds: Vec<Embed> = if embeds_fit(messages) == messages.len() {
        messages.iter().map(to_embed).collect()
    } else {
        vec![digest(messages)]
    };
    let mut body = json!({"embeds": embeds, "allowed_mentions": {"parse": []}});
    if let [only] = messages
        && let Some(rows) = components(only)
    {
        body["components"] = rows;
    }
    if let Some(n) = nonce {
        body["nonce"] = json!(n);
        body["enforce_nonce"] = json!(true);
    }
    body
}

/// How many leading messages fit in one message as separate embeds.
fn embeds_fit(messages: &[Message]) -> usize {
    let mut total = 0;
    let mut n = 0;
    for m in messages.iter().take(EMBED_COUNT_LIMIT) {
        total += twilight_validate::embed::chars(&to_embed(m));
        if n > 0 && total > EMBED_TOTAL_LENGTH {
            break;
        }
        n += 1;
    }
    n
}

fn digest_line(m: &Message) -> String {
    let title = if m.title.trim().is_empty() { "(untitled event)" } else { m.title.as_str() };
    // Brackets in a title would end the link text early.
    let title = cut(title, DIGEST_TITLE).replace('[', "\\[").replace(']', "\\]");
    match http_url(m.url.as_deref()).filter(|u| u.len() <= DIGEST_URL) {
        Some(url) => format!("- [{title}]({url})"),
        None => format!("- {title}"),
    }
}

/// How many leading messages one digest lists.
fn digest_fit(messages: &[Message]) -> usize {
    let mut total = 0;
    let mut n = 0;
    for m in messages.iter().take(DIGEST_MAX) {
        total += chars(&digest_line(m)) + 1;
        if n > 0 && total > DESCRIPTION_LENGTH {
            break;
        }
        n += 1;
    }
    n
}

fn digest(messages: &[Message]) -> Embed {
    let lines: Vec<String> = messages.iter().map(digest_line).collect();
    EmbedBuilder::new()
        .title(format!("{} events", messages.len()))
        .description(cut(&lines.join("\n"), DESCRIPTION_LENGTH))
        .color(0x0058_65F2)
        .footer(EmbedFooterBuilder::new("Sent as one digest to keep within Discord's rate limits"))
        .build()
}

#[cfg(test)]
mod tests {
    use chorus_core::Field;
    use proptest::prelude::*;

    use super::*;

    fn valid(m: &Message) {
        let e = to_embed(m);
        twilight_validate::embed::embed(&e).unwrap();
    }

    fn commit(i: usize) -> Message {
        Message {
            url: Some(format!("https://github.com/octo/app/commit/{i:040}")),
            description: "x".repeat(300),
            ..Message::titled(format!("[octo/app] commit {i}"))
        }
    }

    fn embeds_of(body: &Value) -> Vec<Embed> {
        serde_json::from_value(body["embeds"].clone()).unwrap()
    }

    #[test]
    fn a_message_with_buttons_goes_alone_with_its_components() {
        let plain = Message::titled("plain");
        let gate = Message {
            buttons: vec![
                chorus_core::Button {
                    id: "chorus:approve:apr_x".into(),
                    label: "Approve".into(),
                    style: chorus_core::ButtonStyle::Success,
                },
                chorus_core::Button {
                    id: "chorus:deny:apr_x".into(),
                    label: "Deny".into(),
                    style: chorus_core::ButtonStyle::Danger,
                },
            ],
            ..Message::titled("gate")
        };
        assert_eq!(pack_count(&[plain.clone(), plain.clone(), gate.clone(), plain.clone()]), 2);
        assert_eq!(pack_count(&[gate.clone(), plain.clone()]), 1);
        let body = message_payload(&gate, None);
        assert_eq!(body["components"][0]["type"], 1);
        assert_eq!(body["components"][0]["components"][1]["custom_id"], "chorus:deny:apr_x");
        assert_eq!(body["components"][0]["components"][1]["style"], 4);
        assert_eq!(packed_payload(std::slice::from_ref(&gate), None)["components"], body["components"]);
        assert!(message_payload(&plain, None).get("components").is_none());
    }

    #[test]
    fn a_few_messages_go_as_their_own_embeds() {
        let few: Vec<Message> = (0..4).map(commit).collect();
        assert_eq!(pack_count(&few), 4);
        let embeds = embeds_of(&packed_payload(&few, Some("n")));
        assert_eq!(embeds.len(), 4);
        assert_eq!(embeds[3].title.as_deref(), Some("[octo/app] commit 3"));
        twilight_validate::message::embeds(&embeds).unwrap();
        // Large embeds stop at Discord's 6000 characters per message.
        let big: Vec<Message> =
            (0..6).map(|i| Message { description: "y".repeat(2500), ..commit(i) }).collect();
        let n = pack_count(&big);
        assert_eq!(n, 2);
        twilight_validate::message::embeds(&embeds_of(&packed_payload(&big[..n], None))).unwrap();
        assert_eq!(pack_count(&[]), 0);
        // A backlog that full embeds clear within one window keeps its detail.
        let window: Vec<Message> = (0..DIGEST_AFTER).map(commit).collect();
        assert_eq!(pack_count(&window), EMBED_COUNT_LIMIT);
    }

    #[test]
    fn a_backlog_goes_as_digests_that_list_every_event_once() {
        let backlog: Vec<Message> = (0..1000).map(commit).collect();
        let mut rest = &backlog[..];
        let mut listed = Vec::new();
        while !rest.is_empty() {
            let n = pack_count(rest);
            assert!((1..=DIGEST_MAX).contains(&n));
            let embeds = embeds_of(&packed_payload(&rest[..n], None));
            twilight_validate::message::embeds(&embeds).unwrap();
            if n > EMBED_COUNT_LIMIT {
                assert_eq!(embeds.len(), 1);
                assert_eq!(embeds[0].title.as_deref(), Some(format!("{n} events").as_str()));
                listed.extend(embeds[0].description.as_deref().unwrap().lines().map(str::to_owned));
            } else {
                listed.extend(embeds.iter().map(|e| e.title.clone().unwrap()));
            }
            rest = &rest[n..];
        }
        assert_eq!(listed.len(), 1000);
        assert!(
            listed[0].starts_with("- [\\[octo/app\\] commit 0](https://github.com/octo/app/commit/"),
            "{}",
            listed[0]
        );
        assert!(listed[999].contains("commit 999"));
    }

    #[test]
    fn oversized_parts_are_cut() {
        let mut m = Message::titled("t".repeat(1000));
        m.description = "d".repeat(10_000);
        m.footer = Some("f".repeat(3000));
        m.author = Some("a".repeat(300));
        for i in 0..40 {
            m.fields.push(Field { name: format!("{i}").repeat(300), value: "v".repeat(2000), inline: true });
        }
        valid(&m);
        let e = to_embed(&m);
        assert!(e.fields.len() <= 25);
        assert!(e.title.unwrap().ends_with('…'));
    }

    #[test]
    fn bad_urls_dropped_and_empty_messages_filled() {
        let m = Message {
            url: Some("not a url".into()),
            author: Some("x".into()),
            author_url: Some("javascript:alert(1)".into()),
            ..Message::default()
        };
        let e = to_embed(&m);
        assert!(e.url.is_none());
        assert!(e.author.unwrap().url.is_none());
        assert!(to_embed(&Message::default()).description.is_some());
    }

    #[test]
    fn payload_carries_nonce_and_no_mentions() {
        let p = message_payload(&Message::titled("hi"), Some("abc"));
        assert_eq!(p["nonce"], "abc");
        assert_eq!(p["enforce_nonce"], true);
        assert_eq!(p["allowed_mentions"]["parse"], json!([]));
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            ".{0,3000}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 200, 40, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..40).prop_map(Value::Array),
                proptest::collection::btree_map(".{0,300}", inner, 0..40)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// No payload, through any formatter, yields a message Discord would refuse.
        #[test]
        fn any_payload_renders_a_valid_embed(payload in arb_json(), event in "[a-z_.]{0,40}") {
            for source in chorus_core::Source::ALL {
                let m = chorus_format::format(source, &event, &payload);
                let e = to_embed(&m);
                prop_assert!(twilight_validate::embed::embed(&e).is_ok(), "{:?}", e);
            }
        }

        #[test]
        fn any_message_renders_a_valid_embed(
            title in ".{0,400}", description in ".{0,7000}", footer in proptest::option::of(".{0,3000}"),
            fields in proptest::collection::vec((".{0,300}", ".{0,1500}", any::<bool>()), 0..40),
        ) {
            let m = Message {
                title, description, footer,
                fields: fields.into_iter().map(|(name, value, inline)| Field { name, value, inline }).collect(),
                ..Message::default()
            };
            prop_assert!(twilight_validate::embed::embed(&to_embed(&m)).is_ok());
        }
    }
}
