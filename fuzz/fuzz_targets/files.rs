//! Hook files (JSON and YAML, with line numbers) and workflow definitions:
//! a hook, a workflow or a located error, never a panic.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    yaml: bool,
    text: String,
}

/// A step tool that does nothing, so definitions naming it get past the
/// tool check into the rest of the parser.
struct Noop;

#[async_trait::async_trait]
impl chorus_workflow::Tool for Noop {
    async fn call(
        &self,
        _: chorus_workflow::ToolCall,
    ) -> Result<chorus_workflow::Output, chorus_workflow::ToolError> {
        Ok(chorus_workflow::Output::value(serde_json::Value::Null))
    }
}

fuzz_target!(|input: Input| {
    let name = if input.yaml { "hook.yaml" } else { "hook.json" };
    let _ = chorus_server::fuzz_hook_file(name, &input.text);
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(&input.text) {
        let mut tools = chorus_workflow::Tools::new();
        tools.register("noop", Noop).register("memory_store", Noop);
        let _ = chorus_workflow::Workflow::parse(&value, &tools);
    }
});
