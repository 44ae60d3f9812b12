//! Discord's slash-command interactions and `!hook` text commands: a
//! command or a message for the user, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = chorus_discord::commands::fuzzing::interaction(&value);
        let _ = chorus_discord::commands::fuzzing::interaction(&value["data"]);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = chorus_discord::commands::fuzzing::text(text);
    }
});
