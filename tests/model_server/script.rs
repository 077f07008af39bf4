//! A scenario: what the scripted model does, one tool call per turn, then
//! a final text. The same scenario drives all three CLIs: a step names an
//! intent (`shell`, `read`), and the server turns it into a call of the
//! tool the CLI itself declared in its request (Claude Code's `Bash`,
//! Codex's `exec_command` / `shell`, Gemini's `run_shell_command`...),
//! with arguments shaped by that tool's schema.
//!
//! ```json
//! { "steps": [ { "shell": "git status --short" },
//!              { "read": "/abs/path/.env" },
//!              { "tool": "Bash", "input": { "command": "ls" } } ],
//!   "final": "done" }
//! ```

use serde_json::{json, Map, Value};

#[derive(Debug)]
pub enum Step {
    Shell(String),
    Read(String),
    Tool(String, Value),
}

#[derive(Debug)]
pub struct Scenario {
    pub steps: Vec<Step>,
    pub final_text: String,
}

/// A tool the client declared: its name and JSON schema of its arguments.
pub struct ToolDecl {
    pub name: String,
    pub schema: Value,
}

/// What the model says this turn.
#[derive(Debug, Clone)]
pub enum Action {
    Call { name: String, args: Value },
    Text(String),
}

impl Scenario {
    pub fn parse(text: &str) -> Result<Scenario, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("scenario: {e}"))?;
        let steps = v
            .get("steps")
            .and_then(Value::as_array)
            .ok_or("scenario: `steps` must be an array")?;
        let mut out = Vec::new();
        for (i, s) in steps.iter().enumerate() {
            let step = if let Some(c) = s.get("shell").and_then(Value::as_str) {
                Step::Shell(c.to_string())
            } else if let Some(p) = s.get("read").and_then(Value::as_str) {
                Step::Read(p.to_string())
            } else if let Some(t) = s.get("tool").and_then(Value::as_str) {
                Step::Tool(t.to_string(), s.get("input").cloned().unwrap_or(json!({})))
            } else {
                return Err(format!(
                    "scenario: steps[{i}] needs `shell`, `read` or `tool`: {s}"
                ));
            };
            out.push(step);
        }
        let final_text = v
            .get("final")
            .and_then(Value::as_str)
            .unwrap_or("Scripted session complete.")
            .to_string();
        Ok(Scenario {
            steps: out,
            final_text,
        })
    }

    /// The action for a main-loop request that already holds `calls_made`
    /// of the model's tool calls.
    pub fn next(&self, tools: &[ToolDecl], calls_made: usize) -> Action {
        match self.steps.get(calls_made) {
            None => Action::Text(self.final_text.clone()),
            Some(Step::Tool(name, input)) => Action::Call {
                name: name.clone(),
                args: input.clone(),
            },
            Some(Step::Shell(cmd)) => shell_call(tools, cmd),
            Some(Step::Read(path)) => read_call(tools, path)
                .unwrap_or_else(|| shell_call(tools, &format!("cat '{path}'"))),
        }
    }
}

/// Shell tools of the three CLIs, most specific first.
const SHELL_TOOLS: &[&str] = &[
    "Bash",
    "run_shell_command",
    "exec_command",
    "shell_command",
    "shell",
];
const READ_TOOLS: &[&str] = &["Read", "read_file"];

fn find<'a>(tools: &'a [ToolDecl], names: &[&str]) -> Option<&'a ToolDecl> {
    names
        .iter()
        .find_map(|n| tools.iter().find(|t| t.name == *n))
}

fn properties(schema: &Value) -> Map<String, Value> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn shell_call(tools: &[ToolDecl], cmd: &str) -> Action {
    let Some(t) = find(tools, SHELL_TOOLS) else {
        return Action::Text(format!(
            "scripted model: the client declared no shell tool (wanted one of {SHELL_TOOLS:?}) to run `{cmd}`"
        ));
    };
    let props = properties(&t.schema);
    let mut args = Map::new();
    if props.contains_key("cmd") {
        args.insert("cmd".into(), json!(cmd));
    } else if props
        .get("command")
        .and_then(|c| c.get("type"))
        .and_then(Value::as_str)
        .is_some_and(|ty| ty.eq_ignore_ascii_case("array"))
    {
        args.insert("command".into(), json!(["bash", "-lc", cmd]));
    } else {
        args.insert("command".into(), json!(cmd));
    }
    if props.contains_key("description") {
        args.insert("description".into(), json!("scripted step"));
    }
    Action::Call {
        name: t.name.clone(),
        args: Value::Object(args),
    }
}

fn read_call(tools: &[ToolDecl], path: &str) -> Option<Action> {
    let t = find(tools, READ_TOOLS)?;
    let props = properties(&t.schema);
    let key = ["file_path", "absolute_path", "path"]
        .into_iter()
        .find(|k| props.contains_key(*k))?;
    Some(Action::Call {
        name: t.name.clone(),
        args: json!({ key: path }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str, schema: Value) -> ToolDecl {
        ToolDecl {
            name: name.into(),
            schema,
        }
    }

    fn args(a: Action) -> (String, Value) {
        match a {
            Action::Call { name, args } => (name, args),
            Action::Text(t) => panic!("expected a call, got text {t:?}"),
        }
    }

    #[test]
    fn a_shell_step_is_shaped_by_the_declared_tool_schema() {
        let s = Scenario::parse(r#"{"steps": [{"shell": "git status"}]}"#).unwrap();
        // Codex: exec_command {cmd}.
        let codex = [tool(
            "exec_command",
            json!({"properties": {"cmd": {"type": "string"}}}),
        )];
        assert_eq!(
            args(s.next(&codex, 0)),
            ("exec_command".into(), json!({"cmd": "git status"}))
        );
        // The older Codex shell tool takes an argv array.
        let argv = [tool(
            "shell",
            json!({"properties": {"command": {"type": "array"}}}),
        )];
        assert_eq!(
            args(s.next(&argv, 0)).1,
            json!({"command": ["bash", "-lc", "git status"]})
        );
        // Claude Code: Bash {command, description}, chosen over other tools.
        let claude = [
            tool("Read", json!({"properties": {"file_path": {}}})),
            tool(
                "Bash",
                json!({"properties": {"command": {"type": "string"}, "description": {}}}),
            ),
        ];
        let (name, a) = args(s.next(&claude, 0));
        assert_eq!(name, "Bash");
        assert_eq!(a["command"], "git status");
    }

    #[test]
    fn a_read_step_uses_the_file_tool_or_falls_back_to_cat() {
        let s = Scenario::parse(r#"{"steps": [{"read": "/w/.env"}]}"#).unwrap();
        let gemini = [
            tool(
                "run_shell_command",
                json!({"properties": {"command": {"type": "STRING"}}}),
            ),
            tool("read_file", json!({"properties": {"absolute_path": {}}})),
        ];
        assert_eq!(
            args(s.next(&gemini, 0)),
            ("read_file".into(), json!({"absolute_path": "/w/.env"}))
        );
        let codex = [tool("exec_command", json!({"properties": {"cmd": {}}}))];
        assert_eq!(args(s.next(&codex, 0)).1, json!({"cmd": "cat '/w/.env'"}));
    }

    #[test]
    fn after_the_last_step_the_model_answers_with_the_final_text() {
        let s = Scenario::parse(r#"{"steps": [{"shell": "ls"}], "final": "bye"}"#).unwrap();
        let t = [tool("Bash", json!({}))];
        assert!(matches!(s.next(&t, 1), Action::Text(ref x) if x == "bye"));
        // No shell tool: the model says so instead of calling one.
        assert!(matches!(s.next(&[], 0), Action::Text(ref x) if x.contains("no shell tool")));
    }

    #[test]
    fn a_bad_scenario_names_the_step() {
        let e = Scenario::parse(r#"{"steps": [{"shell": "ls"}, {"run": "x"}]}"#).unwrap_err();
        assert!(e.contains("steps[1]"), "{e}");
        assert!(Scenario::parse(r#"{"final": "x"}"#)
            .unwrap_err()
            .contains("`steps`"));
        assert!(Scenario::parse("not json").is_err());
    }
}
