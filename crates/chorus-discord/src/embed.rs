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
    if let Some(n) = nonce {
        body["nonce"] = json!(n);
        body["enforce_nonce"] = json!(true);
    }
    body
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
